import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import type { KeyProvider } from '../keys/types.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import type { Auditor } from './types.js';
import { CHECKPOINT_KEY, checkpointEncoding, type Checkpoint } from './checkpoint-format.js';
import { readHead } from './db/rows.js';
import { verifyTrail, type VerifyReport } from './verify.js';

export interface PruneOptions {
  db: Kysely<AuditSchema>;
  keys: KeyProvider;
  clock: Clock;
  auditor: Auditor;
  applianceId: string;
  retentionDays: number;
  /** who asked: `job:audit.prune` or `local:<os-user>` */
  actor: string;
}

export interface PruneResult {
  /** records up to this seq are gone (0: nothing pruned) */
  prunedUpTo: number;
  deleted: number;
  checkpoint?: Checkpoint;
}

/**
 * Retention: deletes the records older than `retentionDays` (the longest prefix of the chain whose
 * records are all older), after checking that the whole trail verifies (evidence of tampering is
 * never pruned away: AUDIT_TAMPERED instead). In one transaction it writes a "pruned" checkpoint
 * MACed in the HSM at the last deleted seq, deletes the records, their targets and the older
 * checkpoints, and records `audit.prune`; the rest of the trail then verifies from that checkpoint.
 */
export async function pruneTrail(o: PruneOptions): Promise<PruneResult> {
  const cutoff = o.clock.nowMs() - o.retentionDays * 86_400_000;
  const head = await readHead(o.db);
  if (!head || head.seq === 0) return { prunedUpTo: 0, deleted: 0 };
  const firstKept = await o.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.min('seq').as('s'))
    .where('at', '>=', cutoff)
    .executeTakeFirst();
  const n = firstKept?.s === null || firstKept?.s === undefined ? head.seq : Number(firstKept.s) - 1;
  const report: VerifyReport = await verifyTrail({ db: o.db, applianceId: o.applianceId, keys: o.keys });
  if (!report.ok) {
    throw new AppError(
      'AUDIT_TAMPERED',
      `the audit trail does not verify (first bad seq ${report.firstBadSeq}: ${report.problem?.message ?? ''}); nothing was pruned`,
      {
        hint: 'keep the database as evidence and run coffre audit verify',
        details: report,
      },
    );
  }
  if (n <= report.prunedUpTo) return { prunedUpTo: report.prunedUpTo, deleted: 0 };
  const rec = await o.db.selectFrom('audit_events').select(['seq', 'hash']).where('seq', '=', n).executeTakeFirst();
  if (!rec) throw new AppError('AUDIT_TAMPERED', `record ${n} vanished while pruning; nothing was pruned`);
  const base = { applianceId: o.applianceId, kind: 'pruned' as const, seq: n, hash: rec.hash, at: o.clock.nowMs() };
  const mac = (await o.keys.mac(CHECKPOINT_KEY, checkpointEncoding(base))).toString('hex');
  const checkpoint: Checkpoint = { ...base, keyName: CHECKPOINT_KEY, mac };
  let deleted = 0;
  await o.db.transaction().execute(async (trx) => {
    // recorded first, in the same transaction: if it cannot be written nothing is deleted
    await o.auditor.record(trx, {
      action: 'audit.prune',
      actor: o.actor,
      outcome: 'success',
      targets: { upToSeq: String(n), retentionDays: String(o.retentionDays) },
    });
    await trx
      .insertInto('audit_checkpoints')
      .values({ seq: n, kind: 'pruned', at: base.at, hash: base.hash, key_name: CHECKPOINT_KEY, mac })
      .onConflict((oc) => oc.columns(['seq', 'kind']).doNothing())
      .execute();
    await trx.deleteFrom('audit_targets').where('seq', '<=', n).execute();
    const r = await trx.deleteFrom('audit_events').where('seq', '<=', n).executeTakeFirst();
    deleted = Number(r.numDeletedRows);
    await trx.deleteFrom('audit_checkpoints').where('seq', '<', n).execute();
  });
  return { prunedUpTo: n, deleted, checkpoint };
}
