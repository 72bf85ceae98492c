import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import { GENESIS_HASH } from './canonical.js';
import { exportCheckpoint, rowToCheckpoint } from './checkpoint-format.js';
import { iterateRecords } from './db/rows.js';
import { recordToJson } from './export-format.js';

export interface ExportRange {
  /** inclusive, ms since the epoch */
  from: number;
  /** exclusive */
  to: number;
}

export interface ExportSummary {
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
}

/**
 * JSON-lines export of the records from the first to the last whose time is in [from, to), in seq
 * order and without gaps (a record whose clock time lies just outside the range but whose seq falls
 * inside is included, so the slice's chain can be recomputed) (docs/formats.md
 * "Audit export"). Line 1 describes the export and gives the hash preceding its first record, so
 * the slice's chain can be recomputed; then one line per record; then the checkpoints that fall
 * inside the slice. Constant memory: `write` receives one line at a time (await it for
 * back-pressure).
 */
export async function exportJsonLines(
  db: Kysely<AuditSchema>,
  applianceId: string,
  range: ExportRange,
  write: (line: string) => Promise<void> | void,
): Promise<ExportSummary> {
  const bounds = await db
    .selectFrom('audit_events')
    .select((eb) => [eb.fn.min('seq').as('lo'), eb.fn.max('seq').as('hi')])
    .where('at', '>=', range.from)
    .where('at', '<', range.to)
    .executeTakeFirst();
  const lo = bounds?.lo === null || bounds?.lo === undefined ? null : Number(bounds.lo);
  const hi = bounds?.hi === null || bounds?.hi === undefined ? null : Number(bounds.hi);
  let prevHash: string | null = null;
  if (lo !== null) {
    const prev = await db
      .selectFrom('audit_events')
      .select('hash')
      .where('seq', '=', lo - 1)
      .executeTakeFirst();
    const pruned = await db
      .selectFrom('audit_checkpoints')
      .select('hash')
      .where('kind', '=', 'pruned')
      .where('seq', '=', lo - 1)
      .executeTakeFirst();
    prevHash = lo === 1 ? GENESIS_HASH : (prev?.hash ?? pruned?.hash ?? null);
  }
  await write(
    JSON.stringify({
      type: 'coffre.audit.export',
      version: 1,
      applianceId,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      firstSeq: lo,
      lastSeq: hi,
      prevHash,
    }),
  );
  const summary: ExportSummary = { records: 0, firstSeq: null, lastSeq: null };
  if (lo === null || hi === null) return summary;
  for await (const r of iterateRecords(db, lo - 1, 2000, hi)) {
    await write(JSON.stringify(recordToJson(r)));
    summary.records += 1;
    summary.firstSeq ??= r.seq;
    summary.lastSeq = r.seq;
  }
  const cps = await db
    .selectFrom('audit_checkpoints')
    .selectAll()
    .where('seq', '>=', lo)
    .where('seq', '<=', hi)
    .orderBy('seq')
    .orderBy('kind')
    .execute();
  for (const c of cps) await write(JSON.stringify(exportCheckpoint(rowToCheckpoint(c, applianceId))));
  return summary;
}
