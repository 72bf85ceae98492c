import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import SQLite from 'better-sqlite3';
import { openDatabase, migrateToLatest } from '../../src/db/index.js';
import { tempDir } from '../support/tmp.js';
import { ROOT } from '../support/cli.js';

const M1 = `export async function up(db) { await db.schema.createTable('t1').addColumn('id', 'integer', (c) => c.primaryKey()).execute(); }\n`;
const M2_HANG = `export async function up(db) {
  await db.schema.createTable('t2').addColumn('id', 'integer', (c) => c.primaryKey()).execute();
  for (let i = 0; i < 1000; i++) await db.insertInto('t2').values({ id: i }).execute();
  process.stdout.write('MID\\n');
  await new Promise((r) => setTimeout(r, 60000));
}\n`;
const M2 = `export async function up(db) { await db.schema.createTable('t2').addColumn('id', 'integer', (c) => c.primaryKey()).execute(); }\n`;
const M2_FAIL = `export async function up(db) { await db.schema.createTable('t2').addColumn('id', 'integer').execute(); await db.schema.createTable('t2').addColumn('id', 'integer').execute(); }\n`;

const tables = (file: string) =>
  new SQLite(file, { readonly: true })
    .prepare("select name from sqlite_master where type='table' and name like 't%' order by name")
    .all()
    .map((r) => (r as { name: string }).name);

describe('migrations', () => {
  it('kill -9 during a migration leaves the database consistent, and the migration applies at the next start', async () => {
    const dir = tempDir();
    const mig = path.join(dir, 'migrations');
    fs.mkdirSync(mig);
    fs.writeFileSync(path.join(mig, '2026-01-01T0000-one.js'), M1);
    fs.writeFileSync(path.join(mig, '2026-01-02T0000-two.js'), M2_HANG);
    const file = path.join(dir, 'db.sqlite');
    const script = `
      import { openDatabase, migrateToLatest } from ${JSON.stringify(path.join(ROOT, 'dist/src/db/index.js'))};
      const h = openDatabase({ type: 'sqlite', file: ${JSON.stringify(file)}, busyTimeoutMs: 1000 });
      await migrateToLatest(h.db, ${JSON.stringify(mig)});`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('MID')) resolve();
      });
      child.on('exit', (c) => reject(new Error(`child exited early (${c}): ${err}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // the WAL holds no committed change: neither migration is visible
    expect(tables(file)).toEqual([]);
    fs.writeFileSync(path.join(mig, '2026-01-02T0000-two.js'), M2);
    const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 1000 });
    const r = await migrateToLatest(h.db, mig);
    await h.close();
    expect(r.applied).toEqual(['2026-01-01T0000-one', '2026-01-02T0000-two']);
    expect(tables(file)).toEqual(['t1', 't2']);
  });

  it('a failing migration leaves the database as it was and says which one failed', async () => {
    const dir = tempDir();
    const mig = path.join(dir, 'migrations');
    fs.mkdirSync(mig);
    fs.writeFileSync(path.join(mig, '2026-01-01T0000-one.js'), M1);
    const file = path.join(dir, 'db.sqlite');
    let h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 1000 });
    await migrateToLatest(h.db, mig);
    fs.writeFileSync(path.join(mig, '2026-01-02T0000-two.js'), M2_FAIL);
    await expect(migrateToLatest(h.db, mig)).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(/2026-01-02T0000-two failed: .*left unchanged/),
    });
    await h.close();
    expect(tables(file)).toEqual(['t1']);
    h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 1000 });
    fs.writeFileSync(path.join(mig, '2026-01-02T0000-two.js'), M2);
    expect((await migrateToLatest(h.db, mig)).applied).toEqual(['2026-01-02T0000-two']);
    await h.close();
  });

  it('the project migrations apply to an empty database', async () => {
    const h = openDatabase({ type: 'sqlite', file: path.join(tempDir(), 'x.db'), busyTimeoutMs: 1000 });
    const r = await migrateToLatest(h.db);
    expect(r.applied.length).toBeGreaterThan(0);
    expect((await migrateToLatest(h.db)).applied).toEqual([]);
    await h.close();
  });
});
