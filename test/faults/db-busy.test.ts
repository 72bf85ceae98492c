/**
 * Another process holding SQLite's write lock (a sqlite3 shell left in `BEGIN EXCLUSIVE`) must not
 * freeze the appliance: health and reads keep answering in milliseconds, writes wait
 * asynchronously and then get 503 DB_BUSY with Retry-After, and an alert `db.busy` is raised.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median, openFaultEnv, type FaultEnv, type Reply } from './support.js';

const SQLITE_MODULE = createRequire(import.meta.url).resolve('better-sqlite3');
const WAIT_MS = 2500;
const HOLD_MS = 6000;
/** well under WAIT_MS: an answer this fast did not wait for the lock (loose enough for a loaded machine) */
const FAST_MS = 1200;

/** A second process that takes the write lock, says so, holds it `ms`, then commits. */
function holdLock(file: string, ms: number): Promise<{ released: Promise<void> }> {
  const script = `const D=require(${JSON.stringify(SQLITE_MODULE)});const db=new D(${JSON.stringify(file)});db.exec('BEGIN EXCLUSIVE');console.log('locked');setTimeout(()=>{db.exec('COMMIT');db.close();console.log('released')},${ms});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const released = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('locked')) resolve({ released });
    });
    child.on('error', reject);
  });
}

let env: FaultEnv;
beforeAll(async () => {
  env = await openFaultEnv({ COFFRE_CFG_database__busyTimeoutMs: String(WAIT_MS) });
});
afterAll(async () => env?.close());

describe('a second process holds the SQLite write lock', () => {
  it(
    'health and reads answer at once; writes get 503 DB_BUSY with Retry-After; db.busy is raised',
    { timeout: 60_000 },
    async () => {
      const json = { 'content-type': 'application/json' };
      const folder = await env.req('POST', `/api/v1/workspaces/${env.workspace}/folders`, {
        headers: json,
        body: JSON.stringify({ name: 'before' }),
      });
      expect(folder.status, folder.text).toBe(201);

      const { released } = await holdLock((env.t.appliance.config.database as { file: string }).file, HOLD_MS);
      const t0 = performance.now();
      const health: number[] = [];
      const probing = (async () => {
        while (performance.now() - t0 < HOLD_MS - 500) {
          const r = await env.req('GET', '/healthz', { token: null });
          expect(r.status).toBe(200);
          health.push(r.ms);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      // writes, a few of them at once, while the lock is held
      const writes: Promise<Reply>[] = [];
      for (let i = 0; i < 3; i++)
        writes.push(
          env.req('POST', `/api/v1/workspaces/${env.workspace}/folders`, {
            headers: json,
            body: JSON.stringify({ name: `during-${i}` }),
          }),
        );
      // reads keep answering (authenticated: token looked up, user and tokens read)
      const me = await env.req('GET', '/api/v1/auth/me');
      const tokens = await env.req('GET', '/api/v1/auth/tokens');
      // a read that is audited fails closed, promptly: its audit record cannot be written
      const audited = await env.req('GET', `/api/v1/workspaces/${env.workspace}/folders`);
      const refused = await Promise.all(writes);
      await probing;
      await released;

      expect(me.status, me.text).toBe(200);
      expect(me.ms).toBeLessThan(FAST_MS);
      // listing one's tokens is an audited read of the directory: it fails closed, promptly, like the next one
      expect(tokens.status, tokens.text).toBe(503);
      expect(tokens.ms).toBeLessThan(WAIT_MS + 1000);
      expect(audited.status, audited.text).toBe(503);
      expect(audited.ms).toBeLessThan(WAIT_MS + 1000);
      for (const w of refused) {
        expect(w.status, w.text).toBe(503);
        expect(JSON.parse(w.text).error.code).toBe('DB_BUSY');
        expect(w.headers['retry-after']).toBe('2');
        expect(w.ms).toBeLessThan(WAIT_MS + 1000);
      }
      const max = Math.max(...health);
      console.log(
        `healthz during a ${HOLD_MS} ms lock (${health.length} probes): median ${median(health).toFixed(1)} ms, max ${max.toFixed(1)} ms; writes refused after ${refused.map((w) => Math.round(w.ms)).join(', ')} ms`,
      );
      expect(health.length).toBeGreaterThan(20);
      expect(median(health)).toBeLessThan(100);
      expect(max).toBeLessThan(FAST_MS);
      expect(env.logs.some((l) => l.includes('ALERT db.busy'))).toBe(true);

      // once the lock is gone, writes go through again
      const after = await env.req('POST', `/api/v1/workspaces/${env.workspace}/folders`, {
        headers: json,
        body: JSON.stringify({ name: 'after' }),
      });
      expect(after.status, after.text).toBe(201);
    },
  );
});
