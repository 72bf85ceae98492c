import type { Kysely } from 'kysely';
import type { AuditSchema } from '../../db/index.js';
import { chain, type AuditRecord, type PendingRecord } from '../canonical.js';
import { auditErrors } from '../errors.js';
import { isAppError } from '../../shared/errors.js';
import { recordToRow } from './rows.js';

const CHUNK = 500;

/**
 * Appends records to the chain inside `trx` (which the caller commits or rolls back).
 *
 * Linear under any number of writers and processes: the first statement moves the single head row
 * (`UPDATE audit_head SET seq = seq + n … RETURNING`), which takes the write lock (SQLite) or the
 * row lock (PostgreSQL) until the transaction ends, so a second writer waits and then sees the new
 * head. Any database failure becomes AUDIT_UNAVAILABLE, and the caller's transaction must not commit.
 */
export async function appendRecords(
  trx: Kysely<AuditSchema>,
  pending: readonly PendingRecord[],
): Promise<AuditRecord[]> {
  if (pending.length === 0) return [];
  try {
    const n = pending.length;
    const head = await trx
      .updateTable('audit_head')
      .set((eb) => ({ seq: eb('seq', '+', n) }))
      .where('id', '=', 1)
      .returning(['seq', 'hash'])
      .executeTakeFirst();
    if (!head) throw auditErrors.unavailable({ code: 'NO_CHAIN_HEAD' });
    const records = chain(Number(head.seq) - n, head.hash, pending);
    for (let i = 0; i < records.length; i += CHUNK) {
      const part = records.slice(i, i + CHUNK);
      await trx.insertInto('audit_events').values(part.map(recordToRow)).execute();
      const targets = part.flatMap((r) => r.targets.map(([kind, id]) => ({ seq: r.seq, kind, id })));
      for (let j = 0; j < targets.length; j += CHUNK * 3) {
        await trx
          .insertInto('audit_targets')
          .values(targets.slice(j, j + CHUNK * 3))
          .execute();
      }
    }
    await trx
      .updateTable('audit_head')
      .set({ hash: records[records.length - 1]!.hash })
      .where('id', '=', 1)
      .execute();
    return records;
  } catch (e) {
    if (isAppError(e)) throw e;
    throw auditErrors.unavailable(e);
  }
}
