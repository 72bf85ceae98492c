import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTsa, type TestTsa } from '../support/tsa.js';
import { tempDir } from '../support/tmp.js';
import { TsaClient } from '../../src/seals/tsa.js';
import { openssl } from './support.js';

let tsa: TestTsa;
let work: string;
beforeAll(async () => {
  tsa = await startTestTsa();
  work = tempDir('coffre-tsa-test-');
});
afterAll(async () => {
  await tsa?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('RFC 3161 client against a real TSA (openssl ts) on loopback', () => {
  it('gets a token for the bytes that openssl ts -verify accepts, and that fails for other bytes', async () => {
    const c = new TsaClient({ urls: [tsa.url], timeoutMs: 5000 }, fs.readFileSync(tsa.caFile, 'utf8'));
    const data = Buffer.from(`seal ${crypto.randomUUID()}\n`);
    const t = await c.timestamp(data);
    expect(t.url).toBe(tsa.url);
    expect(Math.abs(t.genTime.getTime() - Date.now())).toBeLessThan(60_000);
    const f = (n: string) => path.join(work, n);
    fs.writeFileSync(f('data'), data);
    fs.writeFileSync(f('data.tsr'), t.response);
    const text = openssl(['ts', '-reply', '-in', f('data.tsr'), '-text']);
    expect(text.out).toMatch(/Status: Granted/);
    expect(text.out).toMatch(/Hash Algorithm: sha256/);
    expect(text.out).toMatch(/Nonce: 0x[0-9A-F]+/);
    const v = openssl([
      'ts',
      '-verify',
      '-data',
      f('data'),
      '-in',
      f('data.tsr'),
      '-CAfile',
      tsa.caFile,
      '-untrusted',
      tsa.certFile,
    ]);
    expect(v.out).toMatch(/Verification: OK/);
    fs.writeFileSync(f('other'), Buffer.concat([data, Buffer.from('x')]));
    expect(
      openssl([
        'ts',
        '-verify',
        '-data',
        f('other'),
        '-in',
        f('data.tsr'),
        '-CAfile',
        tsa.caFile,
        '-untrusted',
        tsa.certFile,
      ]).out,
    ).toMatch(/Verification: FAILED/);
    // our own check agrees
    await expect(c.check(data, t.response)).resolves.toMatchObject({ serial: t.serial });
    await expect(c.check(Buffer.from('other'), t.response)).rejects.toMatchObject({
      code: 'TSA_INVALID',
      message: expect.stringContaining('imprint mismatch'),
    });
  });

  it('refuses a token from a TSA that is not pinned, and a replayed answer (nonce)', async () => {
    const other = await startTestTsa();
    try {
      const pinnedToOurs = new TsaClient({ urls: [other.url], timeoutMs: 5000 }, fs.readFileSync(tsa.caFile, 'utf8'));
      await expect(pinnedToOurs.timestamp(Buffer.from('x'))).rejects.toMatchObject({
        code: 'TSA_INVALID',
        message: expect.stringContaining('signature or certificate not accepted'),
      });
    } finally {
      await other.close();
    }
    const c = new TsaClient({ urls: [tsa.url], timeoutMs: 5000 }, fs.readFileSync(tsa.caFile, 'utf8'));
    const data = Buffer.from('replay');
    const t = await c.timestamp(data);
    await expect(c.check(data, t.response, Buffer.from('0102030405060708', 'hex'))).rejects.toMatchObject({
      code: 'TSA_INVALID',
      message: expect.stringContaining('nonce'),
    });
  });

  it('TSA down: TSA_UNAVAILABLE naming the host, the next URL is tried; back up: granted again', async () => {
    const c = new TsaClient(
      { urls: ['http://127.0.0.2:9/none', tsa.url], timeoutMs: 2000 },
      fs.readFileSync(tsa.caFile, 'utf8'),
    );
    await expect(c.timestamp(Buffer.from('a'))).resolves.toMatchObject({ url: tsa.url });
    await tsa.stop();
    try {
      await expect(c.timestamp(Buffer.from('b'))).rejects.toMatchObject({
        code: 'TSA_UNAVAILABLE',
        httpStatus: 503,
        message: expect.stringMatching(/127\.0\.0\.2:9: .*127\.0\.0\.1:\d+: /),
      });
    } finally {
      await tsa.start();
    }
    await expect(c.timestamp(Buffer.from('c'))).resolves.toMatchObject({ url: tsa.url });
  });
});
