import crypto from 'node:crypto';
import https from 'node:https';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Pattern } from '../support/pattern.js';
import { eventually, footprint, metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

/** Bad input gets a clear 4xx and persists nothing (no row, no blob, no temp file, no data key). */
const MAX = 3 * 1024 * 1024;
let env: VaultEnv;
let alice: User;
let bob: User;
let ws: string;
let before: Awaited<ReturnType<typeof footprint>>;

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_vault__maxUploadBytes: String(MAX) });
  alice = await env.user('alice');
  bob = await env.user('bob');
  ws = await env.workspace(alice);
  await upload(env, alice, ws, 'existing.txt', Buffer.from('already here'));
});
afterAll(async () => env?.close());
beforeEach(async () => {
  before = await footprint(env);
});
/**
 * Nothing stored: once the server is done with every request, clean-up included (a client that
 * went away may leave its upload's handler running for a while), the footprint is as before.
 * Without the first wait a footprint taken before the handler had stored anything passed, and the
 * next test's baseline then held the upload being cleaned up.
 */
const unchanged = async () => {
  await eventually(async () => env.app.inFlight.size === 0 && (await env.app.inFlight.settled(1000)));
  await eventually(async () => JSON.stringify(await footprint(env)) === JSON.stringify(before));
};
const head = (path: string, extra: string) =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/octet-stream\r\n${extra}\r\n`;
const status = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
const post = (p: string, body: Buffer | string, token = alice.token, headers: Record<string, string> = {}) =>
  env.req('POST', p, { token, headers: { 'content-type': 'application/octet-stream', ...headers }, body });

describe('bodies that do not match their Content-Length', () => {
  it('shorter: the connection ends early, nothing is stored', async () => {
    const got = await env.raw(
      head(
        `/api/v1/workspaces/${ws}/documents`,
        'Content-Disposition: attachment; filename=short.bin\r\nContent-Length: 100000\r\n',
      ) + 'x'.repeat(50_000),
      { endAfterMs: 300 },
    );
    expect([0, 400]).toContain(status(got));
    await unchanged();
  });

  it('longer: 400, nothing is stored', async () => {
    const got = await env.raw(
      head(
        `/api/v1/workspaces/${ws}/documents`,
        'Content-Disposition: attachment; filename=long.bin\r\nContent-Length: 10\r\n',
      ) + '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ',
      { endAfterMs: 1000 },
    );
    expect(got).toMatch(/^HTTP\/1\.1 400/m);
    await unchanged();
  });

  it('longer, handed to the service in process: refused at the first byte past it, nothing stored', async () => {
    // HTTP framing cuts a body at its Content-Length; the service holds any caller to it as well
    // (it picks the blob writer's path from the declared length)
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 1024 * 1024) return this.push(null);
        sent += 64 * 1024;
        this.push(crypto.randomBytes(64 * 1024));
      },
    });
    const actor = {
      id: `user:${alice.id}`,
      kind: 'user' as const,
      userId: alice.id,
      username: 'alice',
      roles: ['member'],
    };
    await expect(
      env.t.appliance.vault.upload(
        { actor },
        { kind: 'new', workspaceId: ws, folderId: null, name: 'liar.bin' },
        { stream: body, declaredLength: 100_000, mediaType: 'application/octet-stream' },
      ),
    ).rejects.toMatchObject({ code: 'BODY_LENGTH_MISMATCH' });
    expect(sent).toBeLessThan(1024 * 1024);
    await unchanged();
  });

  it('a client that disconnects mid-upload leaves nothing', async () => {
    await new Promise<void>((resolve) => {
      const req = https.request({
        host: '127.0.0.1',
        port: env.port,
        servername: 'localhost',
        ca: env.ca,
        method: 'POST',
        path: `/api/v1/workspaces/${ws}/documents`,
        headers: {
          ...metaHeaders('gone.bin'),
          authorization: `Bearer ${alice.token}`,
          'content-type': 'application/octet-stream',
          'content-length': String(MAX),
        },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(new Pattern(5).slice(0, 1024 * 1024));
      setTimeout(() => req.destroy(), 300);
    });
    await unchanged();
  });
});

describe('names', () => {
  it.each([
    ['../etc/passwd', encodeURIComponent('../etc/passwd')],
    ['NUL', 'a%00b'],
    ['10,000 characters', 'n'.repeat(10_000)],
    ['invalid UTF-8', '%FF%FEab'],
    ['a truncated UTF-8 sequence', 'caf%C3'],
    ['empty', ''],
  ])('%s: 400 INVALID_NAME', async (_l, q) => {
    const r = await post(`/api/v1/workspaces/${ws}/documents`, 'content', alice.token, {
      'content-disposition': `attachment; filename*=UTF-8''${q}`,
    });
    expect(r.status).toBe(400);
    expect(r.json().error.code).toBe('INVALID_NAME');
    await unchanged();
  });

  it('metadata in the URL is refused with where it goes instead; nothing is stored', async () => {
    for (const [q, where] of [
      ['name=a.txt', /Content-Disposition/],
      ['description=secret', /Coffre-Description/],
      ['tags=x', /Coffre-Tags/],
    ] as const) {
      const r = await post(`/api/v1/workspaces/${ws}/documents?${q}`, 'content', alice.token, metaHeaders('ok.txt'));
      expect(r.status, q).toBe(400);
      expect(r.json().error.code).toBe('INVALID_INPUT');
      expect(r.json().error.message).toMatch(where);
    }
    for (const q of ['q=minutes', 'tag=board']) {
      const r = await env.req('GET', `/api/v1/workspaces/${ws}/documents?${q}`, { token: alice.token });
      expect(r.status, q).toBe(400);
      expect(r.json().error.message).toMatch(/documents\/search/);
    }
    await unchanged();
  });

  it('a plain filename must be ASCII; filename* (RFC 8187) carries any name, and a malformed one is refused', async () => {
    const latin1 = Buffer.from('attachment; filename="caf\xe9.txt"', 'latin1').toString('latin1');
    const bad = await post(`/api/v1/workspaces/${ws}/documents`, 'x', alice.token, { 'content-disposition': latin1 });
    expect(bad.status).toBe(400);
    expect(bad.json().error.message).toMatch(/filename\*=UTF-8/);
    for (const h of [
      "attachment; filename*=latin1''caf%E9",
      'attachment; filename*=UTF-8caf',
      'attachment; filename="a"; filename="b"',
      "attachment; filename*=UTF-8''a b",
    ]) {
      const r = await post(`/api/v1/workspaces/${ws}/documents`, 'x', alice.token, { 'content-disposition': h });
      expect(r.status, h).toBe(400);
    }
    await unchanged();
    const name = "Relevé d'identité — 2026 (copie).pdf";
    const r = await post(
      `/api/v1/workspaces/${ws}/documents`,
      'x',
      alice.token,
      metaHeaders(name, { description: 'Notes, «privées»', tags: ['RH, paie', 'signé'] }),
    );
    expect(r.status, r.body.toString()).toBe(201);
    const doc = (await env.req('GET', `/api/v1/documents/${r.json().id}`, { token: alice.token })).json();
    expect(doc).toMatchObject({ name, description: 'Notes, «privées»', tags: ['RH, paie', 'signé'] });
    // the client's own encodeURIComponent (which leaves ' ( ) * as they are) is accepted too
    const r2 = await post(`/api/v1/workspaces/${ws}/documents`, 'x', alice.token, {
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent("l'été (1).txt")}`,
    });
    expect(r2.status, r2.body.toString()).toBe(201);
    expect((await env.req('GET', `/api/v1/documents/${r2.json().id}`, { token: alice.token })).json().name).toBe(
      "l'été (1).txt",
    );
    before = await footprint(env);
  });

  it('a rename to a bad name, or JSON that is not valid UTF-8, is refused', async () => {
    const doc = await upload(env, alice, ws, 'to-rename.txt', Buffer.from('x'));
    before = await footprint(env);
    for (const name of ['../x', 'a\u0000b', 'y'.repeat(10_000)]) {
      const r = await env.req('PATCH', `/api/v1/documents/${doc.id}`, { token: alice.token, json: { name } });
      expect(r.status).toBe(400);
      expect(r.json().error.code).toBe('INVALID_NAME');
    }
    const bad = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('"}')]);
    const r = await env.req('PATCH', `/api/v1/documents/${doc.id}`, {
      token: alice.token,
      headers: { 'content-type': 'application/json' },
      body: bad,
    });
    expect(r.status).toBe(400);
    expect((await env.req('GET', `/api/v1/documents/${doc.id}`, { token: alice.token })).json().name).toBe(
      'to-rename.txt',
    );
  });

  it('a multipart field that was not valid UTF-8 (replaced by U+FFFD) is refused', async () => {
    const boundary = 'XyZ';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n`),
      Buffer.from([0x61, 0xff, 0x62]),
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\nDATA\r\n--${boundary}--\r\n`,
      ),
    ]);
    const r = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(r.status).toBe(400);
    expect(r.json().error.code).toBe('INVALID_NAME');
    await unchanged();
  });
});

describe('workspaces and folders', () => {
  it('an unknown workspace id: 404', async () => {
    const r = await post(
      '/api/v1/workspaces/00000000-0000-4000-8000-000000000000/documents',
      'x',
      alice.token,
      metaHeaders('a'),
    );
    expect(r.status).toBe(404);
    expect(r.json().error.code).toBe('WORKSPACE_NOT_FOUND');
    await unchanged();
  });

  it("someone else's workspace: the same 404, for uploads, listings and documents", async () => {
    const theirs = await env.workspace(bob, 'Bob private');
    const r = await post(`/api/v1/workspaces/${theirs}/documents`, 'x', alice.token, metaHeaders('a'));
    expect(r.status).toBe(404);
    expect(r.json().error.code).toBe('WORKSPACE_NOT_FOUND');
    const l = await env.req('GET', `/api/v1/workspaces/${theirs}/documents`, { token: alice.token });
    expect(l.status).toBe(404);
    const doc = await upload(env, bob, theirs, 'bob.txt', Buffer.from('secret'));
    before = await footprint(env);
    for (const [m, p] of [
      ['GET', `/api/v1/documents/${doc.id}`],
      ['GET', `/api/v1/documents/${doc.id}/content`],
      ['DELETE', `/api/v1/documents/${doc.id}`],
    ] as const) {
      const x = await env.req(m, p, { token: alice.token });
      expect(x.status, `${m} ${p}`).toBe(404);
      expect(x.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    }
    const v = await post(`/api/v1/documents/${doc.id}/versions`, 'overwrite?');
    expect(v.status).toBe(404);
    await unchanged();
  });

  it('a folder of another workspace: 404', async () => {
    const theirs = await env.workspace(bob, 'Bob folders');
    const f = await env.req('POST', `/api/v1/workspaces/${theirs}/folders`, {
      token: bob.token,
      json: { name: 'Theirs' },
    });
    expect(f.status).toBe(201);
    before = await footprint(env);
    const r = await post(
      `/api/v1/workspaces/${ws}/documents?folderId=${f.json().id}`,
      'x',
      alice.token,
      metaHeaders('a'),
    );
    expect(r.status).toBe(404);
    expect(r.json().error.code).toBe('FOLDER_NOT_FOUND');
    await unchanged();
  });
});

describe('size limit, media type, digests', () => {
  it('a declared length over vault.maxUploadBytes: 413 before the body is read', async () => {
    const got = await env.raw(
      head(
        `/api/v1/workspaces/${ws}/documents`,
        `Content-Disposition: attachment; filename=big.bin\r\nContent-Length: ${MAX + 1}\r\n`,
      ),
      { endAfterMs: 1500 },
    );
    expect(status(got)).toBe(413);
    expect(got).toContain('UPLOAD_TOO_LARGE');
    await unchanged();
  });

  it('a chunked body that grows past the limit: 413, and the partial blob is gone', async () => {
    const r = await env
      .req('POST', `/api/v1/workspaces/${ws}/documents`, {
        token: alice.token,
        headers: { ...metaHeaders('big.bin'), 'content-type': 'application/octet-stream' },
        body: new Pattern(6).stream(MAX + 5 * 1024 * 1024),
      })
      .catch((e: NodeJS.ErrnoException) => ({ status: 0, code: e.code, json: () => ({}) }));
    if (r.status !== 0) {
      expect(r.status).toBe(413);
      expect(r.json().error.code).toBe('UPLOAD_TOO_LARGE');
    }
    await unchanged();
  });

  it('exactly the limit is accepted', async () => {
    const r = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { ...metaHeaders('limit.bin'), 'content-type': 'application/octet-stream' },
      body: new Pattern(7).stream(MAX),
    });
    expect(r.status).toBe(201);
    expect(r.json().size).toBe(MAX);
  });

  it('another content type: 415', async () => {
    const r = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { ...metaHeaders('a.txt'), 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(r.status).toBe(415);
    await unchanged();
  });

  it('a Content-Digest that does not match the body: 400, nothing stored', async () => {
    const wrong = `sha-256=:${Buffer.alloc(32).toString('base64')}:`;
    const r = await post(`/api/v1/workspaces/${ws}/documents`, 'content', alice.token, {
      ...metaHeaders('d.bin'),
      'content-digest': wrong,
    });
    expect(r.status).toBe(400);
    expect(r.json().error.code).toBe('DIGEST_MISMATCH');
    await unchanged();
  });
});

describe('digest sent as a trailer (what `coffre doc put` does)', () => {
  const send = (trailer: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: env.port,
          servername: 'localhost',
          ca: env.ca,
          method: 'POST',
          path: `/api/v1/workspaces/${ws}/documents`,
          headers: {
            ...metaHeaders('trailer.bin'),
            authorization: `Bearer ${alice.token}`,
            'content-type': 'application/octet-stream',
            trailer: 'content-digest',
          },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      req.write('trailer content');
      req.addTrailers({ 'content-digest': trailer });
      req.end();
    });

  it('a matching trailer commits; a wrong one gets 400 DIGEST_MISMATCH and nothing is stored', async () => {
    const good = await send(`sha-256=:${crypto.createHash('sha256').update('trailer content').digest('base64')}:`);
    expect(good.status).toBe(201);
    before = await footprint(env);
    const bad = await send(`sha-256=:${crypto.createHash('sha256').update('other content').digest('base64')}:`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('DIGEST_MISMATCH');
    await unchanged();
  });
});
