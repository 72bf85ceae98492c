/**
 * Vault test support: a whole appliance (real SoftHSM2 token, SQLite, audit trail, identity, keys,
 * blob store) served over real HTTPS on loopback, with users enrolled and API tokens issued through
 * the identity module's own API. Only the Clock is fake.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import * as OTPAuth from 'otpauth';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { buildApp } from '../../src/main.js';
import { listen, type App } from '../../src/http/index.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';

export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json<T = any>(): T;
}

export interface User {
  id: string;
  username: string;
  token: string;
}

export interface VaultEnv {
  t: TestAppliance;
  app: App;
  port: number;
  ca: string;
  clock: FakeClock;
  user(username: string, role?: string): Promise<User>;
  workspace(owner: User, name?: string, quotaBytes?: number | null): Promise<string>;
  addMember(owner: User, workspaceId: string, member: User, role: 'owner' | 'editor' | 'viewer'): Promise<void>;
  req(
    method: string,
    p: string,
    o?: { token?: string; headers?: Record<string, string>; body?: Buffer | string | Readable; json?: unknown },
  ): Promise<Res>;
  /** raw bytes over TLS (malformed requests); resolves with what the server answered until it closed */
  raw(data: Buffer | string, o?: { endAfterMs?: number; destroyAfterMs?: number }): Promise<string>;
  close(): Promise<void>;
}

let seq = 0;

export async function openVaultEnv(env: Record<string, string> = {}): Promise<VaultEnv> {
  const clock = new FakeClock(Date.now());
  const t = await createTestAppliance({
    clock,
    env,
    log: createLogger({ level: process.env.VAULT_TEST_LOG ?? 'silent', destination: 'stderr' }),
  });
  const app = await buildApp(t.appliance, true);
  const log = createLogger({ level: 'silent', destination: 'stderr' });
  await listen(app, '127.0.0.1', 0, log);
  const port = (app.server.address() as { port: number }).port;
  const ca = fs.readFileSync(path.join(t.dataDir, 'tls', 'cert.pem'), 'utf8');
  const agent = new https.Agent({ keepAlive: false, ca });

  const req: VaultEnv['req'] = (method, p, o = {}) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...o.headers,
      };
      let body = o.body;
      if (o.json !== undefined) {
        body = JSON.stringify(o.json);
        headers['content-type'] ??= 'application/json';
      }
      const r = https.request(
        { host: '127.0.0.1', port, path: p, method, agent, servername: 'localhost', headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const b = Buffer.concat(chunks);
            resolve({
              status: res.statusCode!,
              headers: res.headers,
              body: b,
              json: () => JSON.parse(b.toString('utf8')),
            });
          });
        },
      );
      r.on('error', reject);
      if (body === undefined) r.end();
      else if (typeof body === 'string' || Buffer.isBuffer(body)) r.end(body);
      else body.pipe(r);
    });

  const raw: VaultEnv['raw'] = (data, o = {}) =>
    new Promise((resolve) => {
      let got = '';
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
        s.write(data);
        if (o.endAfterMs !== undefined) setTimeout(() => s.end(), o.endAfterMs);
        if (o.destroyAfterMs !== undefined) setTimeout(() => s.destroy(), o.destroyAfterMs);
      });
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(got));
    });

  const user: VaultEnv['user'] = async (username, role = 'member') => {
    const name = `${username}${++seq}`;
    const inv = await t.appliance.identity.accounts.invite(
      { username: name, email: `${name}@example.test`, role },
      'local:test',
      {},
    );
    const password = `Tangerine-Ladder-${seq}-${Math.random().toString(36).slice(2, 8)}X`;
    const e = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/enrol',
      payload: { token: inv.enrolUrl, password },
    });
    expect(e.statusCode, e.body).toBe(200);
    let l = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: name, password, issue: 'token' },
    });
    expect(l.statusCode, l.body).toBe(200);
    // a second factor is required for every role by default: the enrolment set up TOTP
    const secret = (e.json() as { totp?: { secret: string } }).totp?.secret;
    const challenge = (l.json() as { challenge?: string }).challenge;
    if (challenge && secret) {
      const code = OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(secret),
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
        timestamp: clock.nowMs(),
      });
      l = await app.inject({ method: 'POST', url: '/api/v1/auth/login/mfa', payload: { challenge, code } });
      expect(l.statusCode, l.body).toBe(200);
    }
    const token = (l.json() as { token?: string }).token;
    expect(token, l.body).toBeTruthy();
    return { id: inv.user.id, username: name, token: token! };
  };

  const workspace: VaultEnv['workspace'] = async (owner, name = 'Board', quotaBytes) => {
    const r = await req('POST', '/api/v1/workspaces', {
      token: owner.token,
      json: { name, ...(quotaBytes !== undefined ? { quotaBytes } : {}) },
    });
    expect(r.status, r.body.toString()).toBe(201);
    return r.json<{ id: string }>().id;
  };

  const addMember: VaultEnv['addMember'] = async (owner, wsId, member, role) => {
    const r = await req('PUT', `/api/v1/workspaces/${wsId}/members/${member.id}`, {
      token: owner.token,
      json: { role },
    });
    expect(r.status, r.body.toString()).toBe(200);
  };

  return {
    t,
    app,
    port,
    ca,
    clock,
    user,
    workspace,
    addMember,
    req,
    raw,
    close: async () => {
      await app.close();
      await t.close();
    },
  };
}

/** RFC 8187 ext-value of `s` (UTF-8, every non attr-char percent-encoded). */
export const extValue = (s: string) =>
  `UTF-8''${encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;

/** The headers that carry a raw upload's metadata (never the URL). */
export function metaHeaders(name: string, o: { description?: string; tags?: string[] } = {}): Record<string, string> {
  return {
    'content-disposition': `attachment; filename*=${extValue(name)}`,
    ...(o.description !== undefined ? { 'coffre-description': extValue(o.description) } : {}),
    ...(o.tags !== undefined ? { 'coffre-tags': o.tags.map(extValue).join(', ') } : {}),
  };
}

/** Uploads `body` as a new document; returns the parsed reply (asserting 201). */
export async function upload(
  env: VaultEnv,
  u: User,
  ws: string,
  name: string,
  body: Buffer | Readable,
  headers: Record<string, string> = {},
): Promise<{ id: string; version: number; sha256: string; size: number }> {
  const r = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
    token: u.token,
    headers: {
      'content-type': 'application/octet-stream',
      ...metaHeaders(name),
      ...(Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {}),
      ...headers,
    },
    body,
  });
  expect(r.status, r.body.toString()).toBe(201);
  return r.json();
}

/** Counts rows and blobs: "nothing persisted" assertions. */
export async function footprint(
  env: VaultEnv,
): Promise<{ documents: number; versions: number; uploads: number; blobs: number; temp: number; dataKeys: number }> {
  const db = env.t.appliance.db.db;
  const n = async (table: 'vault_documents' | 'vault_versions' | 'vault_uploads' | 'data_keys') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const blobs = [];
  for await (const id of env.t.appliance.blobs.store.list()) blobs.push(id);
  const tmpDir = path.join(env.t.appliance.config.storage.dir, '.tmp');
  return {
    documents: await n('vault_documents'),
    versions: await n('vault_versions'),
    uploads: await n('vault_uploads'),
    blobs: blobs.length,
    temp: fs.existsSync(tmpDir) ? fs.readdirSync(tmpDir).length : 0,
    dataKeys: await n('data_keys'),
  };
}

/** Waits until `f` holds (server-side effects of a dropped connection are asynchronous). */
export async function eventually(f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
