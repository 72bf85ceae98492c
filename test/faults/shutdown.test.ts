/**
 * A stop (SIGTERM) while an upload is still streaming: once the grace is over, the client gets an
 * answer (503 SHUTTING_DOWN with Retry-After) before its connection closes, and the upload's
 * clean-up (blob, data key, pending row) runs before the database closes.
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { initAppliance } from '../../src/init.js';
import { serve, type Running } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestToken } from '../support/softhsm.js';
import { eventually } from '../vault/support.js';

const GRACE = 1000;
let root: string | undefined;
let running: Running | undefined;
afterAll(async () => {
  await running?.stop().catch(() => undefined);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('shutdown with an upload in flight', () => {
  it(
    'answers 503 with Retry-After past the grace, and cleans up before the database closes',
    { timeout: 60_000 },
    async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-stop-'));
      const dataDir = path.join(root, 'data');
      const token = createTestToken();
      await initAppliance({
        dataDir,
        jurisdiction: 'FR',
        timeZone: 'UTC',
        hostnames: ['localhost'],
        actor: 'local:test',
        hsm: token.section,
      });
      const logs: string[] = [];
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          logs.push(...c.toString().split('\n').filter(Boolean));
          cb();
        },
      });
      // a password alone signs in here: this test is about shutdown, not the second factor
      const env = {
        COFFRE_CFG_http__shutdownGraceMs: String(GRACE),
        COFFRE_CFG_jobs__enabled: 'false',
        COFFRE_CFG_auth__mfa__requiredRoles: '[]',
      };
      running = await serve({
        dataDir,
        env,
        log: createLogger({ level: 'info', destination: sink }),
        port: 0,
        host: '127.0.0.1',
      });
      const r = running;
      const a = r.appliance;
      const inv = await a.identity.accounts.invite(
        { username: 'alice', email: 'alice@example.test', role: 'member' },
        'local:test',
        {},
      );
      const password = `Tangerine-Ladder-${Math.random().toString(36).slice(2, 8)}X`;
      expect(
        (await r.app.inject({ method: 'POST', url: '/api/v1/auth/enrol', payload: { token: inv.enrolUrl, password } }))
          .statusCode,
      ).toBe(200);
      const bearer = (
        await r.app.inject({
          method: 'POST',
          url: '/api/v1/auth/login',
          payload: { username: 'alice', password, issue: 'token' },
        })
      ).json<{ token: string }>().token;
      const ws = (
        await r.app.inject({
          method: 'POST',
          url: '/api/v1/workspaces',
          headers: { authorization: `Bearer ${bearer}` },
          payload: { name: 'Board' },
        })
      ).json<{ id: string }>().id;

      // an upload that announces 16 MiB, sends 2 and then waits
      const ca = fs.readFileSync(path.join(dataDir, 'tls', 'cert.pem'), 'utf8');
      const url = new URL(`/api/v1/workspaces/${ws}/documents`, r.url);
      const answer = new Promise<{ status: number; retryAfter: string | undefined; body: string } | Error>(
        (resolve) => {
          const req = https.request(
            url,
            {
              method: 'POST',
              ca,
              servername: 'localhost',
              headers: {
                authorization: `Bearer ${bearer}`,
                'content-disposition': 'attachment; filename=slow.bin',
                'content-type': 'application/octet-stream',
                'content-length': String(16 * 1024 * 1024),
              },
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () =>
                resolve({
                  status: res.statusCode!,
                  retryAfter: res.headers['retry-after'] as string | undefined,
                  body,
                }),
              );
              res.on('error', (e) => resolve(e));
            },
          );
          req.on('error', (e) => resolve(e));
          req.write(Buffer.alloc(2 * 1024 * 1024, 5));
        },
      );
      const db = a.db.db;
      await eventually(async () => (await db.selectFrom('vault_uploads').selectAll().execute()).length === 1);
      const pending = await db.selectFrom('vault_uploads').selectAll().executeTakeFirstOrThrow();

      const t0 = Date.now();
      const stopped = r.stop('SIGTERM');
      const got = await answer;
      expect(got).not.toBeInstanceOf(Error);
      const res = got as { status: number; retryAfter: string | undefined; body: string };
      expect(res.status, res.body).toBe(503);
      expect(res.retryAfter).toBe('5');
      expect(JSON.parse(res.body).error.code).toBe('SHUTTING_DOWN');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE - 50);
      await stopped;
      running = undefined;

      // the upload's clean-up ran while the database was still open
      const file = (a.config.database as { file: string }).file;
      const check = new SQLite(file, { readonly: true });
      try {
        expect(check.prepare('select count(*) as n from vault_uploads').get()).toEqual({ n: 0 });
        expect(check.prepare('select count(*) as n from data_keys where id = ?').get(pending.key_id)).toEqual({ n: 0 });
      } finally {
        check.close();
      }
      const tmp = path.join(a.config.storage.dir, '.tmp');
      expect(fs.readdirSync(tmp)).toEqual([]);
      expect(logs.filter((l) => /"level":50/.test(l))).toEqual([]);
      expect(logs.some((l) => l.includes('"event":"appliance.grace_over"'))).toBe(true);
    },
  );
});
