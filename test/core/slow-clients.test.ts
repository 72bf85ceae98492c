import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, tokenFor } from '../auth/helpers.js';

/**
 * Slow bodies and connection floods, over real TLS sockets from loopback
 * addresses: a body that trickles is cut after http.bodyTimeoutMs on every route except an
 * authenticated upload; connections are capped per address and in total; the systemd unit caps
 * the service's memory.
 */
let env: IdentityEnv;
let port: number;
beforeAll(async () => {
  env = await openIdentityEnv(
    {
      COFFRE_CFG_http__bodyTimeoutMs: '1500',
      COFFRE_CFG_http__maxConnectionsPerAddress: '5',
      COFFRE_CFG_http__maxConnections: '9',
    },
    { listen: true },
  );
  port = (env.app.server.address() as { port: number }).port;
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const ca = () => fs.readFileSync(path.join(env.t.dataDir, 'tls', 'cert.pem'));
function connect(from: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const opts: tls.ConnectionOptions & { localAddress: string } = {
      host: '127.0.0.1',
      port,
      localAddress: from,
      ca: ca(),
      servername: 'localhost',
    };
    const s = tls.connect(opts, () => resolve(s));
    s.once('error', reject);
  });
}
/** resolves with the time (ms) until the server closes the socket, or `limit` when it does not */
const closedWithin = (s: tls.TLSSocket, limit: number) =>
  new Promise<{ ms: number; data: string }>((resolve) => {
    const t0 = performance.now();
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.once('close', () => resolve({ ms: performance.now() - t0, data }));
    s.once('error', () => undefined);
    setTimeout(() => resolve({ ms: limit, data }), limit);
  });
/** true when the server closes a new connection from `from` at once (during or right after the handshake) */
const turnedAway = async (from: string) => {
  const s = await connect(from).catch(() => undefined);
  if (!s) return true;
  return (await closedWithin(s, 3_000)).ms < 3_000;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('slow clients', () => {
  it('B5: a trickled body on a public route is cut within seconds (408, socket closed)', async () => {
    const s = await connect('127.0.13.1');
    s.write(
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{',
    );
    const trickle = setInterval(() => s.writable && s.write(' '), 300);
    const r = await closedWithin(s, 10_000);
    clearInterval(trickle);
    expect(r.ms).toBeLessThan(5_000);
    expect(r.data).toMatch(/^HTTP\/1\.1 408/);
    expect(r.data).toMatch(/BODY_TIMEOUT/);
    s.destroy();
  });

  it('B5: an authenticated upload may take longer than the body deadline', async () => {
    const u = await enrolUser(env, 'slow-uploader', 'member');
    const token = await tokenFor(env, u);
    const ws = await env.app.inject({
      method: 'POST',
      url: '/api/v1/workspaces',
      headers: { authorization: `Bearer ${token}` },
      payload: { name: 'slow' },
    });
    expect(ws.statusCode, ws.body).toBe(201);
    const s = await connect('127.0.13.2');
    const body = 'x'.repeat(10);
    s.write(
      `POST /api/v1/workspaces/${ws.json().id}/documents HTTP/1.1\r\nHost: localhost\r\nContent-Disposition: attachment; filename=slow.txt\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    );
    const done = closedWithin(s, 15_000);
    for (const ch of body) {
      await sleep(300); // 3 s in all: twice the deadline
      s.write(ch);
    }
    const r = await done;
    expect(r.data).toMatch(/^HTTP\/1\.1 201/);
  });

  it('B5: connections are capped per address (others unaffected) and in total', async () => {
    const held = await Promise.all(Array.from({ length: 5 }, () => connect('127.0.14.1')));
    expect(await turnedAway('127.0.14.1')).toBe(true);
    // another address still gets in, up to the total (9)
    const more = await Promise.all(Array.from({ length: 4 }, () => connect('127.0.14.2')));
    for (const m of more) m.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(await turnedAway('127.0.14.3')).toBe(true);
    [...held, ...more].forEach((s) => s.destroy());
    await sleep(200);
    const after = await connect('127.0.14.1');
    after.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect((await closedWithin(after, 5_000)).data).toMatch(/^HTTP\/1\.1 200/);
  });

  it('the systemd unit caps the service memory (MemoryMax=)', () => {
    const unit = fs.readFileSync(
      path.join(import.meta.dirname, '..', '..', 'appliance', 'systemd', 'coffre.service'),
      'utf8',
    );
    expect(unit).toMatch(/^\[Service\][\s\S]*^MemoryMax=\d+(%|[KMGT])$/m);
  });
});
