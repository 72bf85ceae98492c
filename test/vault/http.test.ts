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
    const alerts = await env.t.appliance.db.db
      .selectFrom('alerts')
      .select('kind')
      .where('kind', '=', 'vault.integrity')
      .execute();
    expect(alerts).toEqual([]);
  });

  it('a range beyond the end gets 416 with the size', async () => {
    for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`]) {
      const r = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token, headers: { range } });
      expect(r.status).toBe(416);
      expect(r.json().error.code).toBe('RANGE_NOT_SATISFIABLE');
    }
    const empty = await upload(env, alice, ws, 'empty', Buffer.alloc(0));
    const r = await env.req('GET', `/api/v1/documents/${empty.id}/content`, {
      token: alice.token,
      headers: { range: 'bytes=0-' },
    });
    expect(r.status).toBe(416);
  });

  it('a stale If-Range gets the whole content; several ranges too', async () => {
    const stale = await env.req('GET', `/api/v1/documents/${id}/content`, {
      token: alice.token,
      headers: { range: 'bytes=0-9', 'if-range': '"0000"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(size);
    const fresh = await env.req('GET', `/api/v1/documents/${id}/content`, {
      token: alice.token,
      headers: { range: 'bytes=0-9', 'if-range': `"${sha(data)}"` },
    });
    expect(fresh.status).toBe(206);
    const multi = await env.req('GET', `/api/v1/documents/${id}/content`, {
      token: alice.token,
      headers: { range: 'bytes=0-1,5-6' },
    });
    expect(multi.status).toBe(200);
  });
});

describe('versions', () => {
  it('an upload to an existing document makes a new immutable version', async () => {
    const v1 = new Pattern(1001).slice(0, 5000);
    const v2 = new Pattern(1002).slice(0, 7000);
    const doc = await upload(env, alice, ws, 'minutes.txt', v1);
    const r = await env.req('POST', `/api/v1/documents/${doc.id}/versions`, {
      token: alice.token,
      headers: { 'content-type': 'application/octet-stream' },
      body: v2,
    });
    expect(r.status).toBe(201);
    expect(r.json()).toMatchObject({ id: doc.id, version: 2, size: 7000, sha256: sha(v2), created: false });
    const meta = (await env.req('GET', `/api/v1/documents/${doc.id}`, { token: alice.token })).json();
    expect(meta).toMatchObject({ name: 'minutes.txt', version: 2, size: 7000 });
    expect(meta.versions.map((v: { version: number; sha256: string }) => [v.version, v.sha256])).toEqual([
      [2, sha(v2)],
      [1, sha(v1)],
    ]);
    const old = await env.req('GET', `/api/v1/documents/${doc.id}/content?version=1`, { token: alice.token });
    expect(old.body.equals(v1)).toBe(true);
    const head = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: alice.token });
    expect(head.body.equals(v2)).toBe(true);
    expect(head.headers['x-coffre-version']).toBe('2');
    const missing = await env.req('GET', `/api/v1/documents/${doc.id}/content?version=3`, { token: alice.token });
    expect(missing.status).toBe(404);
    expect(missing.json().error.code).toBe('VERSION_NOT_FOUND');
  });

  it('two concurrent uploads to one document give two whole versions, never a mix', async () => {
    const base = await upload(env, alice, ws, 'contended.bin', Buffer.from('v1'));
    const size = 3 * C + 123;
    const a = new Pattern(2001);
    const b = new Pattern(2002);
    const put = (p: Pattern) =>
      env.req('POST', `/api/v1/documents/${base.id}/versions`, {
        token: alice.token,
        headers: { 'content-type': 'application/octet-stream' },
        body: p.stream(size),
      });
    const [ra, rb] = await Promise.all([put(a), put(b)]);
    expect([ra.status, rb.status]).toEqual([201, 201]);
    const versions = [ra.json().version, rb.json().version].sort();
    expect(versions).toEqual([2, 3]);
    const bodies = await Promise.all(
      versions.map(
        async (v) =>
          (await env.req('GET', `/api/v1/documents/${base.id}/content?version=${v}`, { token: alice.token })).body,
      ),
    );
    const hashes = new Set(bodies.map(sha));
    expect(hashes).toEqual(new Set([a.sha256(size), b.sha256(size)]));
  });
});

describe('multipart uploads', () => {
  it('takes the fields before the file, defaults the name to the file name, and streams the file', async () => {
    const data = new Pattern(3001).slice(0, C + 5);
    const form = new FormData();
    form.append('tags', 'board');
    form.append('tags', '2026');
    form.append('description', 'Q3 minutes, signed');
    form.append('file', new Blob([new Uint8Array(data)], { type: 'application/pdf' }), 'Procès-verbal.pdf');
    const req = new Request('https://x/', { method: 'POST', body: form });
    const body = Buffer.from(await req.arrayBuffer());
    const r = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { 'content-type': req.headers.get('content-type')!, 'content-length': String(body.length) },
      body,
    });
    expect(r.status, r.body.toString()).toBe(201);
    const { id, sha256 } = r.json();
    expect(sha256).toBe(sha(data));
    const meta = (await env.req('GET', `/api/v1/documents/${id}`, { token: alice.token })).json();
    expect(meta).toMatchObject({
      name: 'Procès-verbal.pdf',
      tags: ['board', '2026'],
      description: 'Q3 minutes, signed',
    });
    expect(meta.versions[0].mediaType).toBe('application/pdf');
    const down = await env.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token });
    expect(down.body.equals(data)).toBe(true);
    expect(down.headers['content-type']).toBe('application/pdf');
    expect(down.headers['content-disposition']).toContain("filename*=UTF-8''Proc%C3%A8s-verbal.pdf");
  });
});

describe('API description', () => {
  it('every vault route is in the OpenAPI document with its schemas', async () => {
    const r = await env.req('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.json();
    for (const [p, m] of [
      ['/api/v1/workspaces/{workspaceId}/documents', 'post'],
      ['/api/v1/workspaces/{workspaceId}/documents', 'get'],
      ['/api/v1/documents/{id}/content', 'get'],
      ['/api/v1/documents/{id}/versions', 'post'],
      ['/api/v1/documents/{id}', 'patch'],
      ['/api/v1/documents/{id}/restore', 'post'],
      ['/api/v1/workspaces/{workspaceId}/folders', 'post'],
    ] as const) {
      expect(doc.paths[p]?.[m], `${m} ${p}`).toBeDefined();
      expect(Object.keys(doc.paths[p][m].responses).length).toBeGreaterThan(1);
    }
    expect(Object.keys(doc.paths['/api/v1/workspaces/{workspaceId}/documents'].post.requestBody.content)).toEqual([
      'application/octet-stream',
      'multipart/form-data',
    ]);
  });
});

describe('for backups', () => {
  it('referencedBlobIds lists exactly the blobs the database references, in pages', async () => {
    const { referencedBlobIds } = await import('../../src/vault/index.js');
    const db = env.t.appliance.db.db;
    const rows = await db.selectFrom('vault_versions').select('blob_id').execute();
    const listed: string[] = [];
    for await (const id of referencedBlobIds(db, 3)) listed.push(id);
    expect(listed).toEqual(rows.map((r) => r.blob_id).sort());
    const stored: string[] = [];
    for await (const id of env.t.appliance.blobs.store.list()) stored.push(id);
    expect(new Set(stored)).toEqual(new Set(listed));
  });
});
