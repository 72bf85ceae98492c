import tls from 'node:tls';
import net from 'node:net';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { runCli, startServe } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

let dataDir: string;
let child: ChildProcess;
let port: number;
let ca: Buffer;
let logs: () => string;

beforeAll(async () => {
  dataDir = path.join(tempDir(), 'appliance');
  const init = await runCli(['init', '--data-dir', dataDir, '--json']);
  expect(init.code, init.stderr).toBe(0);
  ca = fs.readFileSync(JSON.parse(init.stdout).caFile);
  const s = await startServe(dataDir);
  child = s.child;
  logs = s.logs;
  port = Number(new URL(s.url).port);
});
afterAll(() => {
  child?.kill('SIGTERM');
});

/** Tries a handshake; resolves with the negotiated cipher or the error. */
function handshake(
  opts: tls.ConnectionOptions,
): Promise<{ ok: true; cipher: string; version: string | null } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts }, () => {
      const r = { ok: true as const, cipher: s.getCipher().standardName, version: s.getProtocol() };
      s.end();
      resolve(r);
    });
    s.on('error', (e) => resolve({ ok: false, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }));
  });
}

describe('TLS policy over a real socket', () => {
  it('refuses TLS 1.0 and 1.1', async () => {
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake({ minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
      expect(r.ok, `${v} must be refused`).toBe(false);
      if (!r.ok) expect(r.error).toMatch(/protocol version|unsupported protocol|no protocols available/i);
    }
  });

  it('on TLS 1.2 refuses AES-128, CBC and RSA key exchange suites', async () => {
    for (const c of [
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-SHA384',
      'ECDHE-ECDSA-AES256-SHA',
      'AES256-GCM-SHA384',
      'AES128-GCM-SHA256',
      'AES256-SHA256',
    ]) {
      const r = await handshake({ maxVersion: 'TLSv1.2', ciphers: `${c}@SECLEVEL=0` });
      expect(r.ok, `${c} must be refused`).toBe(false);
    }
  });

  it('on TLS 1.2 serves the ECDHE AES-256-GCM and ChaCha20 suites', async () => {
    for (const c of ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      const r = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: c });
      expect(r).toMatchObject({ ok: true, version: 'TLSv1.2' });
    }
  });

  it('on TLS 1.3 refuses TLS_AES_128_GCM_SHA256 and serves TLS_AES_256_GCM_SHA384', async () => {
    const bad = await handshake({ minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' });
    expect(bad.ok).toBe(false);
    const good = await handshake({ minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' });
    expect(good).toMatchObject({ ok: true, cipher: 'TLS_AES_256_GCM_SHA384', version: 'TLSv1.3' });
  });

  it('answers no application data to plain HTTP, and logs the failed handshake', async () => {
    const data = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      setTimeout(() => s.destroy(), 3000);
    });
    expect(data).not.toMatch(/status|ok|HTTP\/1\.1 200/);
    await new Promise((r) => setTimeout(r, 200));
    expect(logs()).toMatch(/"event":"tls.handshake_failed"/);
  });

  it('sends HSTS (1 year+, includeSubDomains), the strict CSP, and 426 to IE11', async () => {
    const get = (ua?: string) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
        (resolve, reject) => {
          https
            .get(
              {
                host: '127.0.0.1',
                port,
                path: '/healthz',
                ca,
                servername: 'localhost',
                headers: ua ? { 'user-agent': ua } : {},
              },
              (res) => {
                let body = '';
                res.on('data', (d) => (body += d));
                res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
              },
            )
            .on('error', reject);
        },
      );
    const r = await get();
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
    const hsts = String(r.headers['strict-transport-security']);
    expect(Number(/max-age=(\d+)/.exec(hsts)?.[1])).toBeGreaterThanOrEqual(31_536_000);
    expect(hsts).toMatch(/includeSubDomains/);
    const csp = String(r.headers['content-security-policy']);
    for (const d of ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"])
      expect(csp).toContain(d);
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
    const ie = await get('Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko');
    expect(ie.status).toBe(426);
    expect(ie.body).toMatch(/Firefox/);
  });
});
