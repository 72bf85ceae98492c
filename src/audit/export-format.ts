import type { AuditRecord } from './canonical.js';

/**
 * One record as exported (JSON lines, syslog message body, API): every field of the chain, so an
 * auditor can recompute the hashes from an export (docs/formats.md "Audit export").
 */
export interface ExportedRecord {
  type: 'coffre.audit.event';
  seq: number;
  at: string;
  actor: string;
  action: string;
  outcome: string;
  reason: string | null;
  targets: Record<string, string>;
  source: { ip: string | null; userAgent: string | null; requestId: string | null };
  hash: string;
}

export function recordToJson(r: AuditRecord): ExportedRecord {
  return {
    type: 'coffre.audit.event',
    seq: r.seq,
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    reason: r.reason,
    targets: Object.fromEntries(r.targets),
    source: { ip: r.sourceIp, userAgent: r.userAgent, requestId: r.requestId },
    hash: r.hash,
  };
}
