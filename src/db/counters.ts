import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { CoreTables } from './tables.js';

/** Fixed-window counters: how many hits a key had in the current window. */
export interface WindowCounters {
  /** counts one hit on `key` in the `windowMs` window that holds `nowMs`; the count includes it */
  incr(key: string, windowMs: number, nowMs: number): Promise<{ count: number; resetAtMs: number }>;
}

/** rows of windows that ended are deleted about once per this many hits */
const PRUNE_EVERY = 1_000;

/**
 * Counters in the database, so that every node of a deployment counts the same hits (rate limits
 * and flood budgets behind a load balancer). One row per key, updated by one upsert: exact under
 * concurrent hits from several nodes, on SQLite and PostgreSQL. Keys are stored as SHA-256
 * (they hold client addresses). Windows are aligned on multiples of `windowMs`, so nodes agree on
 * them without talking.
 */
export class DbWindowCounters implements WindowCounters {
  private hits = 0;

  constructor(private readonly db: Kysely<CoreTables>) {}

  async incr(key: string, windowMs: number, nowMs: number): Promise<{ count: number; resetAtMs: number }> {
    const start = Math.floor(nowMs / windowMs) * windowMs;
    const end = start + windowMs;
    const row = await this.db
      .insertInto('rate_counters')
      .values({
        key: crypto.createHash('sha256').update(key).digest('hex'),
        window_start: start,
        count: 1,
        expires_at: end,
      })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          count: sql<number>`CASE WHEN rate_counters.window_start = ${start} THEN rate_counters.count + 1 ELSE 1 END`,
          window_start: start,
          expires_at: end,
        }),
      )
      .returning('count')
      .executeTakeFirstOrThrow();
    if (++this.hits % PRUNE_EVERY === 0) await this.prune(nowMs);
    return { count: Number(row.count), resetAtMs: end };
  }

  /** deletes the rows of windows that ended before `nowMs` */
  async prune(nowMs: number): Promise<number> {
    const r = await this.db.deleteFrom('rate_counters').where('expires_at', '<', nowMs).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
