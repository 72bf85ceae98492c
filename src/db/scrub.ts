import { SqliteAdapter, sql, type Kysely } from 'kysely';

export interface ScrubResult {
  /** false: a reader kept the write-ahead log alive (busy); the next scrub finishes the job */
  done: boolean;
}

/**
 * After a crypto-shred: makes sure the deleted bytes are gone from every file of the database.
 * SQLite zeroes deleted rows in the main file (`secure_delete`, set at open), but the frames that
 * wrote them stay in the write-ahead log until it is truncated: a `TRUNCATE` checkpoint copies the
 * log into the main file (where the rows are now zeroes) and empties it. It waits for readers up
 * to the busy timeout. PostgreSQL keeps dead tuples until VACUUM; nothing is done there (see
 * docs/formats.md "Crypto-shredding").
 */
export async function scrubDeleted(db: Kysely<any>): Promise<ScrubResult> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return { done: true };
  const r = await sql<{ busy: number; log: number; checkpointed: number }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
  const row = r.rows[0];
  return { done: row === undefined || Number(row.busy) === 0 };
}
