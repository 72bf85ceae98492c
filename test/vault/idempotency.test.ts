/**
 * A lost acknowledgement must not make a duplicate: uploads carry an `Idempotency-Key`, and a
 * retry with the same key gets the version the first attempt created. The CLI test cuts the
 * connection (a TCP proxy between it and the appliance) right when the answer starts, after the
 * appliance committed: `coffre doc put` retries with the same key and one document exists.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { footprint, metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

let env: VaultEnv;
let alice: User;
let ws: string;
beforeAll(async () => {
  env = await openVaultEnv();
  alice = await env.user('alice');
  ws = await env.workspace(alice);
});
afterAll(async () => {
  await env?.close();
});

const put = (u: User, p: string, body: Buffer, key?: string, name?: string) =>
  env.req('POST', p, {
    token: u.token,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...(name ? metaHeaders(name) : {}),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body,
  });

describe('Idempotency-Key on uploads', () => {
  it('a retry with the same key returns the version already stored, without storing anything more', async () => {
    const body = Buffer.from('minutes of the board, v1');
    const first = await put(alice, `/api/v1/workspaces/${ws}/documents`, body, 'key-0001', 'retry.txt');
    expect(first.status, first.body.toString()).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const before = await footprint(env);
    const retry = await put(alice, `/api/v1/workspaces/${ws}/documents`, body, 'key-0001', 'retry.txt');
    expect(retry.status, retry.body.toString()).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(await footprint(env)).toEqual(before);
    // without a key, a second upload is a second document (as before)
    const other = await put(alice, `/api/v1/workspaces/${ws}/documents`, body, undefined, 'retry.txt');
    expect(other.status).toBe(201);
    expect(other.json().id).not.toBe(first.json().id);
  });

  it('two attempts with one key in flight at once make one document; the loser leaves nothing behind', async () => {
    const before = await footprint(env);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const [a, b] = await Promise.all([
      put(alice, `/api/v1/workspaces/${ws}/documents`, body, 'key-race', 'twice.bin'),
      put(alice, `/api/v1/workspaces/${ws}/documents`, body, 'key-race', 'twice.bin'),
    ]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.json().id).toBe(b.json().id);
    const after = await footprint(env);
    expect(after.documents - before.documents).toBe(1);
    expect(after.versions - before.versions).toBe(1);
    expect(after.blobs - before.blobs).toBe(1);
    expect(after.dataKeys - before.dataKeys).toBe(1);
    expect(after.uploads).toBe(0);
  });

  it('works for new versions; a key is per user and per target, and remembered for a day', async () => {
    const doc = await upload(env, alice, ws, 'versioned.txt', Buffer.from('v1'));
    const v = (key: string, u = alice) => put(u, `/api/v1/documents/${doc.id}/versions`, Buffer.from('v2'), key);
    const v2 = await v('key-v2');
    const again = await v('key-v2');
    expect(v2.status).toBe(201);
    expect(again.json()).toEqual(v2.json());
    expect(v2.json().version).toBe(2);
    const versions = await env.req('GET', `/api/v1/documents/${doc.id}/versions`, { token: alice.token });
    expect(versions.json().versions).toHaveLength(2);

    // the same key on another target is refused, not silently answered with the other document
    const elsewhere = await put(alice, `/api/v1/workspaces/${ws}/documents`, Buffer.from('x'), 'key-v2', 'x.txt');
    expect(elsewhere.status).toBe(409);
    expect(elsewhere.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');

    // another user's key space is their own
    const bob = await env.user('bob');
    const bobWs = await env.workspace(bob);
    const bobs = await put(bob, `/api/v1/workspaces/${bobWs}/documents`, Buffer.from('b'), 'key-0001', 'b.txt');
    expect(bobs.status).toBe(201);
    expect(bobs.headers['idempotent-replayed']).toBeUndefined();
    // and bob cannot learn alice's document through her key
    const probe = await put(bob, `/api/v1/documents/${doc.id}/versions`, Buffer.from('x'), 'key-v2');
    expect(probe.status).toBe(404);

    env.clock.advance(25 * 3_600_000);
    const later = await v('key-v2');
    expect(later.status).toBe(201);
    expect(later.json().version).toBe(3);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
  });

  it('a malformed key is refused (400) without being echoed', async () => {
    const r = await put(
      alice,
      `/api/v1/workspaces/${ws}/documents`,
      Buffer.from('x'),
      `SECRET-MARKER ${'x'.repeat(300)}`,
      'bad.txt',
    );
    expect(r.status).toBe(400);
    expect(r.body.toString()).not.toContain('SECRET-MARKER');
  });
});

describe('coffre doc put after a lost answer', () => {
  it('retries with the same key: one document, exit 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-idem-'));
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, env.ca);
    const file = path.join(dir, 'report.bin');
    // large enough that the replayed answer comes before the retry has sent the whole file
    const data = Buffer.alloc(8 * 1024 * 1024, 3);
    fs.writeFileSync(file, data);
    const cliWs = await env.workspace(alice, 'Cli');
    // the first connection is cut when the appliance starts answering (after it committed)
    let connections = 0;
    const proxy = net.createServer((client) => {
      const n = ++connections;
      const upstream = net.connect(env.port, '127.0.0.1');
      let sent = 0;
      client.on('data', (d: Buffer) => {
        sent += d.length;
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (n === 1 && sent > data.length) {
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        client.write(d);
      });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['doc', 'put', '--workspace', cliWs, file, '--json'], {
        env: { COFFRE_URL: `https://localhost:${port}`, COFFRE_TOKEN: alice.token, COFFRE_CA: caFile },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('retrying');
      expect(connections).toBe(2);
      const list = await env.req('GET', `/api/v1/workspaces/${cliWs}/documents`, { token: alice.token });
      expect(list.json().items).toHaveLength(1);
      expect(JSON.parse(r.stdout).id).toBe(list.json().items[0].id);
    } finally {
      proxy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
