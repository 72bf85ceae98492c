import https from 'node:https';
import tls from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { build, listen } from '../../src/http/index.js';
import { createLogger } from '../../src/shared/logger.js';
import { makeSelfSigned, TLS_POLICY } from '../../src/http/index.js';
import { Value } from '@sinclair/typebox/value';
import { HttpSection } from '../../src/config/sections/http.js';
import { runCli, startServe } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const log = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function get(port: number, ca: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: p, ca, servername: 'localhost', agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('graceful shutdown', () => {
  it('finishes in-flight requests and refuses new connections', async () => {
    const cert = await makeSelfSigned([]);
    const app = await build({
      http: Value.Default(HttpSection, {}) as never,
      log,
      https: { ...TLS_POLICY, cert: cert.certPem, key: cert.keyPem },
      api: [
        async (a) => {
          a.get('/slow', { config: { public: true } }, async () => {
            await new Promise((r) => setTimeout(r, 500));
            return { done: true };
          });
        },
      ],
    });
    await listen(app, '127.0.0.1', 0, log);
    const port = (app.server.address() as { port: number }).port;
    const inflight = get(port, cert.certPem, '/api/v1/slow');
    await new Promise((r) => setTimeout(r, 100));
    const closing = app.close();
    await expect(get(port, cert.certPem, '/healthz')).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
    expect(await inflight).toEqual({ status: 200, body: '{"done":true}' });
    await closing;
  });

  it('closes a connection whose headers trickle in past headersTimeout (slowloris)', async () => {
    const cert = await makeSelfSigned([]);
    const app = await build({
      http: Value.Default(HttpSection, { headersTimeoutMs: 1000 }) as never,
      log,
      https: { ...TLS_POLICY, cert: cert.certPem, key: cert.keyPem },
    });
    await listen(app, '127.0.0.1', 0, log);
    const port = (app.server.address() as { port: number }).port;
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: cert.certPem, servername: 'localhost' }, () => {
        s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
        const t = setInterval(() => s.writable && s.write('X-Slow: a\r\n'), 200);
        s.on('close', () => (clearInterval(t), resolve(Date.now() - started)));
      });
      s.on('error', () => undefined);
      s.resume();
      setTimeout(() => s.destroy(), 15_000);
    });
    expect(closedAfter).toBeLessThan(5000);
    await app.close();
  });

  it('coffre serve stops cleanly on SIGTERM (exit 0, logged)', async () => {
    const dir = path.join(tempDir(), 'a');
    expect((await runCli(['init', '--data-dir', dir])).code).toBe(0);
    const s = await startServe(dir);
    const ca = fs.readFileSync(path.join(dir, 'tls/cert.pem'), 'utf8');
    expect((await get(Number(new URL(s.url).port), ca, '/healthz')).status).toBe(200);
    const code = await new Promise<number | null>((resolve) => {
      s.child.removeAllListeners('exit');
      s.child.once('exit', (c) => resolve(c));
      s.child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(s.logs()).toMatch(/"event":"appliance.stopped"/);
  });
});
