import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pattern } from '../support/pattern.js';
import { footprint, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

const C = 1024 * 1024; // the blob format's chunk size (plaintext bytes per chunk)
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let env: VaultEnv;
let alice: User;
let ws: string;

beforeAll(async () => {
  env = await openVaultEnv();
  alice = await env.user('alice');
  ws = await env.workspace(alice);
});
afterAll(async () => env?.close());

describe('round trips over HTTPS', () => {
  it.each([
    ['0 bytes', 0],
    ['1 byte', 1],
    ['exactly one chunk', C],
    ['one chunk plus one byte', C + 1],
    ['three chunks and a bit', 3 * C + 17],
  ])('%s', async (_label, size) => {
    const data = new Pattern(size + 1).slice(0, size);
    const up = await upload(env, alice, ws, `file-${size}.bin`, data);
    expect(up).toMatchObject({ version: 1, size, sha256: sha(data) });
    const down = await env.req('GET', `/api/v1/documents/${up.id}/content`, { token: alice.token });
    expect(down.status).toBe(200);
    expect(down.headers['content-length']).toBe(String(size));
    expect(down.headers['repr-digest']).toBe(`sha-256=:${Buffer.from(sha(data), 'hex').toString('base64')}:`);
    expect(down.headers['accept-ranges']).toBe('bytes');
    expect(down.body.equals(data)).toBe(true);
  });
});

describe('Range requests: random access by chunk', () => {
  const size = 2 * C + 10;
  const data = new Pattern(77).slice(0, size);
  let id: string;
  beforeAll(async () => {
    id = (await upload(env, alice, ws, 'ranged.bin', data)).id;
  });

  it.each([
    ['first byte', 'bytes=0-0', 0, 0],
    ['last byte of chunk 0 and first of chunk 1', `bytes=${C - 1}-${C}`, C - 1, C],
    ['exactly chunk 1', `bytes=${C}-${2 * C - 1}`, C, 2 * C - 1],
    ['first byte of chunk 1', `bytes=${C}-${C}`, C, C],
    ['across all chunks', `bytes=1-${size - 2}`, 1, size - 2],
    ['the short last chunk', `bytes=${2 * C}-`, 2 * C, size - 1],
    ['suffix: last byte', 'bytes=-1', size - 1, size - 1],
    ['end past the size is clipped', `bytes=${size - 3}-${size + 1000}`, size - 3, size - 1],
  ])('%s', async (_l, range, start, end) => {
    const r = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`);
    expect(r.headers['content-length']).toBe(String(end - start + 1));
    expect(r.body.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it('raised no integrity alert while serving ranges (every chunk verified clean)', async () => {
    const alerts = await env.t.appliance.db.db.selectFrom('alerts').select('kind').where('kind', '=', 'vault.integrity').execute();
    expect(alerts).toEqual([]);
  });

  it('a range beyond the end gets 416 with the size', async () => {
    for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`]) {
      const r = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range } });
      expect(r.status).toBe(416);
      expect(r.json().error.code).toBe('RANGE_NOT_SATISFIABLE');
    }
    const empty = await upload(env, alice, ws, 'empty', Buffer.alloc(0));
    const r = await env.req('GET', `/api/v1/documents/${empty.id}/content`, { token: alice.token, headers: { range: 'bytes=0-' } });
    expect(r.status).toBe(416);
  });

  it('a stale If-Range gets the whole content; several ranges too', async () => {
    const stale = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range: 'bytes=0-9', 'if-range': '"0000"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(size);
    const fresh = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range: 'bytes=0-9', 'if-range': `"${sha(data)}"` } });
    expect(fresh.status).toBe(206);
    const multi = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range: 'bytes=0-1,5-6' } });
    expect(multi.status).toBe(200);
  });
});
