/**
 * The shared window counters (src/db/counters.ts) on both dialects: two database handles stand
 * for two nodes; hits from both, in parallel bursts, count once each in the same window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbWindowCounters, openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { createTestDb } from '../support/db.js';

let db: Awaited<ReturnType<typeof createTestDb>>;
let other: DatabaseHandle;
beforeAll(async () => {
  db = await createTestDb();
  other = openDatabase(db.config);
});
afterAll(async () => {
  await other?.close();
  await db?.destroy();
});

describe('shared window counters', () => {
  it('hits from two nodes in parallel bursts count exactly, per key and window', async () => {
    const a = new DbWindowCounters(db.db);
    const b = new DbWindowCounters(other.db);
    const now = 1_800_000_000_000; // a window boundary: 60 s windows start at multiples of 60 000
    const counts = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).incr('a|auth|127.0.0.9', 60_000, now + i)),
    );
    expect(counts.map((c) => c.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(counts.map((c) => c.resetAtMs))).toEqual(new Set([now + 60_000]));
    // another key counts apart; the next window starts again at 1
    expect((await b.incr('a|auth|127.0.0.10', 60_000, now)).count).toBe(1);
    expect((await a.incr('a|auth|127.0.0.9', 60_000, now + 60_000)).count).toBe(1);
    // addresses are not stored as such
    const keys = await db.db.selectFrom('rate_counters').select('key').execute();
    expect(keys.map((k) => k.key).join()).not.toContain('127.0.0');
    // ended windows are pruned
    expect(await a.prune(now + 60_001)).toBe(1);
    expect(await a.prune(now + 120_001)).toBe(1);
  });
});
