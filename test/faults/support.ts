/**
 * Fault-injection support: an appliance served over real HTTPS on loopback (SoftHSM2 token, SQLite,
 * blob store) whose JSON log lines are kept for assertions, a user with an API token and a
 * workspace. Only the Clock is fake.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { buildApp } from '../../src/main.js';
import { listen, type App } from '../../src/http/index.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

export interface FaultEnv {
  t: TestAppliance;
  app: App;
  port: number;
  clock: FakeClock;
  token: string;
  workspace: string;
  logs: string[];
  req(
    method: string,
    p: string,
    o?: { headers?: Record<string, string>; body?: Buffer | string; token?: string | null },
  ): Promise<Reply>;
  close(): Promise<void>;
}

export async function openFaultEnv(
  env: Record<string, string> = {},
  o: { dataDir?: (dir: string) => void } = {},
): Promise<FaultEnv> {
  const clock = new FakeClock(Date.now());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  // users sign in with a password alone here: these tests are about faults, not the second factor
  const t = await createTestAppliance({
    clock,
    env: { COFFRE_CFG_auth__mfa__requiredRoles: '[]', ...env },
    log: createLogger({ level: 'info', destination: sink }),
  });
  o.dataDir?.(t.dataDir);
  const app = await buildApp(t.appliance, true);
  await listen(app, '127.0.0.1', 0, createLogger({ level: 'silent', destination: 'stderr' }));
  const port = (app.server.address() as { port: number }).port;
  const ca = fs.readFileSync(path.join(t.dataDir, 'tls', 'cert.pem'), 'utf8');
  const agent = new https.Agent({ keepAlive: false, ca });
  let token = '';
  const req: FaultEnv['req'] = (method, p, ro = {}) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const tok = ro.token === undefined ? token : ro.token;
      const r = https.request(
        {
          host: '127.0.0.1',
          port,
          path: p,
          method,
          agent,
          servername: 'localhost',
          headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...ro.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
              ms: performance.now() - t0,
            }),
          );
        },
      );
      r.on('error', reject);
      r.end(ro.body);
    });
  const inv = await t.appliance.identity.accounts.invite(
    { username: 'alice', email: 'alice@example.test', role: 'member' },
    'local:test',
    {},
  );
  const password = `Tangerine-Ladder-${Math.random().toString(36).slice(2, 8)}X`;
  const e = await app.inject({ method: 'POST', url: '/api/v1/auth/enrol', payload: { token: inv.enrolUrl, password } });
  expect(e.statusCode, e.body).toBe(200);
  const l = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username: 'alice', password, issue: 'token' },
  });
  expect(l.statusCode, l.body).toBe(200);
  token = (l.json() as { token: string }).token;
  const w = await req('POST', '/api/v1/workspaces', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Board' }),
  });
  expect(w.status, w.text).toBe(201);
  return {
    t,
    app,
    port,
    clock,
    token,
    workspace: (JSON.parse(w.text) as { id: string }).id,
    logs,
    req,
    close: async () => {
      await app.close();
      await t.close();
    },
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};
