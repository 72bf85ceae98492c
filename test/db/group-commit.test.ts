/**
 * SQLite's group commit (src/db/wal-sync.ts, src/db/sqlite.ts): a change is answered only after a
 * flush of the WAL that began once it was committed; changes that end together share flushes; a
 * journal that cannot be flushed refuses every later change; outside WAL mode SQLite flushes each
 * commit itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, unwaited, type DatabaseHandle } from '../../src/db/index.js';

const dirs: string[] = [];
const handles: DatabaseHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function open(): Promise<DatabaseHandle & { file: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-group-commit-'));
  dirs.push(dir);
  const file = path.join(dir, 'coffre.db');
  const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 2000 });
  handles.push(h);
  await sql`create table t (id integer primary key, v text not null)`.execute(h.db);
  return { ...h, file };
}

const synchronous = async (h: DatabaseHandle) =>
  Number((await sql<{ synchronous: number }>`pragma synchronous`.execute(h.db)).rows[0]!.synchronous);

describe('group commit (SQLite, WAL)', () => {
  it('answers each of 64 concurrent transactions after a flush begun once it committed, sharing flushes', async () => {
    const h = await open();
    const before = h.flushes!();
    const outcomes = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        h.db
          .transaction()
          .execute(async (trx) => {
            await sql`insert into t (id, v) values (${i}, ${'x'.repeat(100)})`.execute(trx);
            // flushes are sequential: number `begun + 1` begins after this point, so after the commit
            return h.flushes!().started;
          })
          .then((begun) => ({ begun, endedAtAnswer: h.flushes!().ended })),
      ),
    );
    for (const o of outcomes) expect(o.endedAtAnswer).toBeGreaterThan(o.begun);
    const after = h.flushes!();
    const flushes = after.ended - before.ended;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThan(32); // shared: one per transaction would be 64
    expect(after.started).toBe(after.ended);
    const n = await sql<{ n: number }>`select count(*) as n from t`.execute(h.db);
    expect(Number(n.rows[0]!.n)).toBe(64);
    // SQLite itself does not flush at each commit here: the driver does
    expect(await synchronous(h)).toBe(1);
  });

  it('answers a single statement outside a transaction after a flush too', async () => {
    const h = await open();
    const begun = h.flushes!().started;
    await sql`insert into t (id, v) values (1, 'a')`.execute(h.db);
    expect(h.flushes!().ended).toBeGreaterThan(begun);
    // a read is not flushed
    const ended = h.flushes!().ended;
    await h.db
      .selectFrom('t' as never)
      .selectAll()
      .execute();
    expect(h.flushes!().started).toBe(ended);
  });

  it('does not wait for a flush inside `unwaited`; the next waited change brings it to the disk', async () => {
    const h = await open();
    const before = h.flushes!();
    await unwaited(async () => {
      await sql`insert into t (id, v) values (1, 'pending row')`.execute(h.db);
      await h.db.transaction().execute((trx) => sql`insert into t (id, v) values (2, 'data key')`.execute(trx));
    });
    expect(h.flushes!().started).toBe(before.started);
    await sql`insert into t (id, v) values (3, 'version')`.execute(h.db);
    expect(h.flushes!().ended).toBe(before.ended + 1);
  });

  it('refuses every later change once the journal could not be flushed; reads go on', async () => {
    const h = await open();
    await sql`insert into t (id, v) values (1, 'kept')`.execute(h.db);
    // a second process (the CLI next to the server) has the file open, and its WAL is then removed
    // from under it: what it commits now reaches no file that survives
    const other = openDatabase({ type: 'sqlite', file: h.file, busyTimeoutMs: 2000 });
    handles.push(other);
    const read = async () => (await sql<{ v: string }>`select v from t where id = 1`.execute(other.db)).rows;
    expect(await read()).toEqual([{ v: 'kept' }]);
    fs.rmSync(`${h.file}-wal`);
    const first = await sql`insert into t (id, v) values (2, 'lost')`.execute(other.db).catch((e: unknown) => e);
    expect((first as { code?: string }).code).toBe('DB_SYNC_FAILED');
    expect((first as Error).message).toContain('changes are refused until the appliance restarts');
    const later = await other.db
      .transaction()
      .execute((trx) => sql`insert into t (id, v) values (3, 'refused')`.execute(trx))
      .catch((e: unknown) => e);
    expect((later as { code?: string }).code).toBe('DB_SYNC_FAILED');
    expect(await read()).toEqual([{ v: 'kept' }]);
  });

  it('leaves the flushing to SQLite outside WAL mode, and takes it back in WAL mode', async () => {
    const h = await open();
    const { started } = h.flushes!();
    await sql`pragma journal_mode = delete`.execute(h.db);
    expect(await synchronous(h)).toBe(2); // FULL
    await sql`insert into t (id, v) values (1, 'a')`.execute(h.db);
    expect(h.flushes!().started).toBe(0);
    await sql`pragma journal_mode = wal`.execute(h.db);
    expect(await synchronous(h)).toBe(1);
    await sql`insert into t (id, v) values (2, 'b')`.execute(h.db);
    expect(h.flushes!().ended).toBe(1);
    expect(started).toBeGreaterThan(0);
  });
});
