/**
 * A damaged database file (a corrupted copy: one page overwritten with garbage) is reported as
 * corruption, never as a bug, and no message echoes the damaged bytes: `coffre audit verify` says
 * DB_CORRUPT (exit 7); `serve` runs PRAGMA quick_check at start, alerts db.corrupt and refuses to
 * write (so it does not start); the daily db.integrity-check job does the same while running.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openAppliance, serve } from '../../src/main.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';

const MARKER = 'MARKERBYTES\u00ff\u0001';

let t: TestAppliance;
let dbFile: string;
const copies: string[] = [];
beforeAll(async () => {
  t = await createTestAppliance({ keep: true });
  for (let i = 0; i < 400; i++)
    await t.appliance.audit.recordNow({
      action: 'test.event',
      actor: `user:u${i % 7}`,
      outcome: 'success',
      targets: { document: `d${i}`, workspace: `w${i % 3}` },
    });
  dbFile = (t.appliance.config.database as { file: string }).file;
  await t.appliance.close();
});
afterAll(() => {
  for (const d of [t?.dataDir, ...copies]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the data directory whose database has page `pageOf(db)` overwritten with garbage. */
function corruptedCopy(pageOf: (db: SQLite.Database) => number, file = dbFile): string {
  const dir = `${t.dataDir}-copy${copies.length}`;
  fs.cpSync(t.dataDir, dir, { recursive: true });
  copies.push(dir);
  const target = path.join(dir, path.relative(t.dataDir, file));
  smash(target, pageOf);
  return dir;
}

function smash(file: string, pageOf: (db: SQLite.Database) => number): void {
  const db = new SQLite(file, { readonly: true });
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const page = pageOf(db);
  db.close();
  const garbage = Buffer.alloc(pageSize, Buffer.from(MARKER, 'latin1'));
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, garbage, 0, pageSize, (page - 1) * pageSize);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

const rootOf = (name: string) => (db: SQLite.Database) =>
  (db.prepare('select rootpage from sqlite_master where name = ?').get(name) as { rootpage: number }).rootpage;

function sink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return {
    lines,
    stream: new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(...c.toString('latin1').split('\n').filter(Boolean));
        cb();
      },
    }),
  };
}

describe('a damaged database', () => {
  it('coffre audit verify reports a damaged page as DB_CORRUPT (exit 7), without echoing its bytes', async () => {
    const dir = corruptedCopy(rootOf('audit_events'));
    let out = '';
    let err = '';
    const code = await main(['node', 'coffre', 'audit', 'verify', '--data-dir', dir, '--json'], {
      out: (s) => void (out += s),
      err: (s) => void (err += s),
    });
    process.exitCode = undefined;
    expect(code, err).toBe(7);
    expect(JSON.parse(out)).toMatchObject({ ok: false, code: 'DB_CORRUPT' });
    expect(err).toMatch(/^DB_CORRUPT: the database file .* is damaged \(SQLITE_CORRUPT/);
    for (const text of [out, err]) {
      expect(text).not.toContain('MARKERBYTES');
      expect(text).not.toMatch(/INTERNAL|a bug/);
    }
  });

  it(
    'serve checks the file at start: db.corrupt alert, changes refused, the appliance does not start',
    { timeout: 60_000 },
    async () => {
      const dir = corruptedCopy(rootOf('audit_targets_id'));
      const s = sink();
      const started = await serve({
        dataDir: dir,
        env: { COFFRE_CFG_jobs__enabled: 'false' },
        log: createLogger({ level: 'info', destination: s.stream }),
        port: 0,
        host: '127.0.0.1',
      }).then(
        async (r) => {
          await r.stop();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(started).toMatchObject({ code: 'DB_CORRUPT', httpStatus: 503 });
      expect((started as Error).message).toContain('quick_check');
      expect(s.lines.some((l) => l.includes('"event":"db.integrity_failed"'))).toBe(true);
      expect(s.lines.some((l) => l.includes('ALERT db.corrupt'))).toBe(true);
      expect(s.lines.join('\n')).not.toContain('MARKERBYTES');
    },
  );

  it(
    'the daily check finds damage while running: alert, changes refused, reads go on',
    { timeout: 60_000 },
    async () => {
      const dir = `${t.dataDir}-live`;
      fs.cpSync(t.dataDir, dir, { recursive: true });
      copies.push(dir);
      const s = sink();
      const a = await openAppliance({
        dataDir: dir,
        clock: new FakeClock(Date.now()),
        log: createLogger({ level: 'info', destination: s.stream }),
      });
      try {
        const first = await a.scheduler.run<{ ok: boolean }>('db.integrity-check', {
          trigger: 'cli',
          actor: 'local:test',
        });
        expect(first.result.ok).toBe(true);
        await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(a.db.db);
        smash((a.config.database as { file: string }).file, rootOf('audit_targets_id'));

        await expect(
          a.scheduler.run('db.integrity-check', { trigger: 'schedule', actor: 'job:db.integrity-check' }),
        ).rejects.toMatchObject({ code: 'DB_CORRUPT' });
        expect(s.lines.some((l) => l.includes('ALERT db.corrupt'))).toBe(true);
        await expect(
          a.audit.recordNow({ action: 'test.after', actor: 'local:test', outcome: 'success' }),
        ).rejects.toMatchObject({ code: 'DB_CORRUPT', httpStatus: 503 });
        expect(await a.db.db.selectFrom('appliance_meta').select('key').limit(1).execute()).toHaveLength(1);
        expect(s.lines.join('\n')).not.toContain('MARKERBYTES');
      } finally {
        await a.close();
      }
    },
  );
});
