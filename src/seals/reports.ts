import crypto from 'node:crypto';
import type { SealsDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { ProofStamps, ProofTimestamp } from './stamps.js';

/** A signed integrity report as kept: what was checked, the outcome, the exact signed bytes. */
export interface KeptReport {
  id: string;
  createdAt: string;
  actor: string;
  scope: { kind: string; id: string | null };
  ok: boolean;
  versions: number;
  failures: number;
  /** the exact signed bytes (canonical JSON) */
  body: string;
  sha256: string;
  /** base64 DER ECDSA signature over `body` */
  signature: string;
  certificateFingerprint: string;
  timestamp: ProofTimestamp;
}

/**
 * Signed integrity reports (docs/records.md "Integrity control"), kept so that records managers see
 * every check that ran (the weekly scrub, `coffre vault verify`, members' checks) and can hand the
 * signed bytes to an auditor. Ids, counts and problem codes only.
 */
export class ReportArchive {
  constructor(private readonly o: { db: SealsDb; clock: Clock; stamps: Pick<ProofStamps, 'of'> }) {}

  async keep(r: {
    body: string;
    signature: string;
    certificateFingerprint: string;
    scope: { kind: string; id: string | null };
    ok: boolean;
    versions: number;
    failures: number;
    actor: string;
  }): Promise<void> {
    await this.o.db
      .insertInto('seal_reports')
      .values({
        id: crypto.randomUUID(),
        sha256: crypto.createHash('sha256').update(r.body, 'utf8').digest('hex'),
        body: r.body,
        signature: r.signature,
        cert_fingerprint: r.certificateFingerprint,
        scope_kind: r.scope.kind,
        scope_id: r.scope.id,
        ok: r.ok ? 1 : 0,
        versions: r.versions,
        failures: r.failures,
        actor: r.actor,
        created_at: this.o.clock.nowMs(),
      })
      .execute();
  }

  /** The newest reports first. */
  async list(limit: number): Promise<KeptReport[]> {
    const rows = await this.o.db
      .selectFrom('seal_reports')
      .selectAll()
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    const out: KeptReport[] = [];
    for (const r of rows)
      out.push({
        id: r.id,
        createdAt: new Date(Number(r.created_at)).toISOString(),
        actor: r.actor,
        scope: { kind: r.scope_kind, id: r.scope_id },
        ok: Number(r.ok) === 1,
        versions: Number(r.versions),
        failures: Number(r.failures),
        body: r.body,
        sha256: r.sha256,
        signature: r.signature,
        certificateFingerprint: r.cert_fingerprint,
        timestamp: await this.o.stamps.of('integrity-report', r.sha256),
      });
    return out;
  }
}
