import os from 'node:os';
import type { AuditRecord } from '../canonical.js';
import { exportCheckpoint, type Checkpoint } from '../checkpoint-format.js';
import { recordToJson } from '../export-format.js';

/**
 * RFC 5424 messages for the customer's SIEM (docs/formats.md "Audit export").
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [coffre@32473 k="v" …] BOM{json}
 *
 * SD-ID `coffre@32473`: 32473 is the private enterprise number reserved for documentation (RFC
 * 5612); the structured data repeats the fields a SIEM filters on, the JSON message carries the
 * whole record (including its chain hash) exactly as the JSON-lines export does.
 */
export const SD_ID = 'coffre@32473';

/** RFC 5424 severities */
export const SEVERITY = {
  emergency: 0,
  alert: 1,
  critical: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
} as const;

export interface SyslogHeader {
  facility: number;
  appName: string;
  hostname?: string;
  procId?: string;
}

const printable = (s: string, max: number) => s.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '-';
/** PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]` are backslash-escaped */
const sdValue = (s: string) => s.replace(/[\\"\]]/g, (c) => `\\${c}`);

function message(
  h: SyslogHeader,
  severity: number,
  at: number,
  msgId: string,
  sd: Record<string, string | number | null | undefined>,
  body: unknown,
): string {
  const pri = h.facility * 8 + severity;
  const host = printable(h.hostname ?? os.hostname(), 255);
  const params = Object.entries(sd)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}="${sdValue(String(v))}"`)
    .join(' ');
  return `<${pri}>1 ${new Date(at).toISOString()} ${host} ${printable(h.appName, 48)} ${printable(h.procId ?? String(process.pid), 128)} ${printable(msgId, 32)} [${SD_ID}${params ? ' ' + params : ''}] \uFEFF${JSON.stringify(body)}`;
}

const outcomeSeverity: Record<string, number> = {
  success: SEVERITY.info,
  failure: SEVERITY.notice,
  denied: SEVERITY.warning,
};

export function recordMessage(h: SyslogHeader, r: AuditRecord): string {
  const json = recordToJson(r);
  return message(
    h,
    outcomeSeverity[r.outcome] ?? SEVERITY.notice,
    r.at,
    'audit',
    {
      seq: r.seq,
      action: r.action,
      actor: r.actor,
      outcome: r.outcome,
      reason: r.reason,
      ip: r.sourceIp,
      requestId: r.requestId,
      hash: r.hash,
    },
    json,
  );
}

export function checkpointMessage(h: SyslogHeader, c: Checkpoint): string {
  return message(
    h,
    SEVERITY.notice,
    c.at,
    'checkpoint',
    { seq: c.seq, kind: c.kind, hash: c.hash, mac: c.mac },
    exportCheckpoint(c),
  );
}

export interface AlertMessage {
  id: string;
  at: string;
  applianceId: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  targets?: Record<string, string>;
}

const alertSeverity = { info: SEVERITY.info, warning: SEVERITY.warning, critical: SEVERITY.critical } as const;

export function alertMessage(h: SyslogHeader, a: AlertMessage): string {
  return message(
    h,
    alertSeverity[a.severity],
    Date.parse(a.at),
    'alert',
    { id: a.id, kind: a.kind, severity: a.severity },
    { type: 'coffre.alert', ...a },
  );
}

/** Octet-counting framing for stream transports (RFC 5425 §4.3, RFC 6587 §3.4.1): `LEN SP MSG`. */
export function frame(msg: string): Buffer {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}
