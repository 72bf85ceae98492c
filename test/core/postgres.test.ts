import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, migrateToLatest, pendingMigrations, type DatabaseHandle } from '../../src/db/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

/** Every migration runs on PostgreSQL as on SQLite, and creates every table the modules declare. */
let pg: TestPostgres;
let h: DatabaseHandle;
beforeAll(async () => {
  pg = await startPostgres();
  h = openDatabase({
    type: 'postgres',
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    ssl: false,
    maxConnections: 4,
  });
}, 60_000);
afterAll(async () => {
  await h?.close().catch(() => undefined);
  await pg?.stop();
});

/** Table names declared by every module's tables.ts (and src/db/tables.ts). */
function declaredTables(): string[] {
  const src = path.resolve(import.meta.dirname, '../../src');
  const names: string[] = [];
  for (const m of fs.readdirSync(src)) {
    const f = path.join(src, m, 'tables.ts');
    if (fs.existsSync(f)) for (const x of fs.readFileSync(f, 'utf8').matchAll(/^ {2}(\w+): \{/gm)) names.push(x[1]!);
  }
  return names.sort();
}

describe('migrations on PostgreSQL', () => {
  it('run from scratch, create every declared table with 64-bit integers, and run again as a no-op', async () => {
    await migrateToLatest(h.db);
    const rows = await sql<{
      table_name: string;
    }>`select table_name from information_schema.tables where table_schema = 'public'`.execute(h.db);
    const have = new Set(rows.rows.map((r) => r.table_name));
    expect(declaredTables().filter((t) => !have.has(t))).toEqual([]);
    const narrow = await sql<{
      c: string;
    }>`select table_name || '.' || column_name as c from information_schema.columns where table_schema = 'public' and data_type = 'integer'`.execute(
      h.db,
    );
    expect(narrow.rows.map((r) => r.c)).toEqual([]);
    expect(await pendingMigrations(h.db)).toEqual([]);
    expect((await migrateToLatest(h.db)).applied).toEqual([]);
  }, 120_000);

  it('reads 64-bit integers back as numbers, as SQLite does', async () => {
    const at = Date.UTC(2026, 11, 7) * 1000; // beyond 2^32, within 2^53
    await h.db.insertInto('appliance_meta').values({ key: 'pg-test', value: 'v' }).execute();
    const r = await sql<{ n: number }>`select ${at}::bigint as n`.execute(h.db);
    expect(r.rows[0]!.n).toBe(at);
  });
});
