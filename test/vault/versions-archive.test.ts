import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/tmp.js';
import { metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

/**
 * What the console's documents screen needs from the vault, over real HTTPS: the author of each
 * version by name, restoring an older version as a new one (audited), several documents as one
 * streamed zip; and each attacked from another workspace, from a lower role and by an admin.
 */
let env: VaultEnv;
let owner: User;
let editor: User;
let viewer: User;
let outsider: User;
let admin: User;
let ws: string;
let otherWs: string;

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const db = () => env.t.appliance.db.db;
const audit = (action: string) =>
  db()
    .selectFrom('audit_events')
    .select(['actor', 'outcome', 'reason', 'targets'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
/** the user behind an actor id (`user:<id>`, or `token:<id>` of one of their API tokens) */
async function userOf(actor: string): Promise<string> {
  if (actor.startsWith('user:')) return actor.slice(5);
  const t = await db().selectFrom('api_tokens').select('user_id').where('id', '=', actor.slice(6)).executeTakeFirst();
  return t?.user_id ?? actor;
}
const about = (e: { targets: string | null }, id: string) => !!e.targets?.includes(id);
const newVersion = async (u: User, id: string, body: Buffer) => {
  const r = await env.req('POST', `/api/v1/documents/${id}/versions`, {
    token: u.token,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    body,
  });
  expect(r.status, r.body.toString()).toBe(201);
};

/** the members of a zip, opened with Info-ZIP's stock `unzip` */
function unzip(zip: Buffer): Map<string, Buffer> {
  const d = tempDir('coffre-zip-');
  const f = path.join(d, 'x.zip');
  fs.writeFileSync(f, zip);
  execFileSync('unzip', ['-q', f, '-d', path.join(d, 'out')]);
  const out = new Map<string, Buffer>();
  for (const n of fs.readdirSync(path.join(d, 'out'))) out.set(n, fs.readFileSync(path.join(d, 'out', n)));
  return out;
}

beforeAll(async () => {
  env = await openVaultEnv();
  owner = await env.user('olga');
  editor = await env.user('eddie');
  viewer = await env.user('vera');
  outsider = await env.user('oscar');
  admin = await env.user('adam', 'admin');
  ws = await env.workspace(owner, 'Urgences');
  otherWs = await env.workspace(outsider, 'Autre service');
  await env.addMember(owner, ws, editor, 'editor');
  await env.addMember(owner, ws, viewer, 'viewer');
}, 120_000);
afterAll(async () => env?.close());

describe('versions: authors by name, restore as a new version', () => {
  it('each version names its author', async () => {
    const doc = await upload(env, owner, ws, 'protocole.txt', Buffer.from('v1'));
    await newVersion(editor, doc.id, Buffer.from('v2 by the editor'));
    const r = await env.req('GET', `/api/v1/documents/${doc.id}`, { token: viewer.token });
    expect(r.status).toBe(200);
    const versions = r.json<{ versions: { version: number; createdBy: string; createdByName: string | null }[] }>()
      .versions;
    expect(versions.map((v) => [v.version, v.createdByName])).toEqual([
      [2, editor.username],
      [1, owner.username],
    ]);
    expect(await Promise.all(versions.map((v) => userOf(v.createdBy)))).toEqual([editor.id, owner.id]);
  });

  it('an editor restores v1 of three: v4 holds v1’s bytes, audited before, nothing rewritten', async () => {
    const v1 = Buffer.from('first draft — évacuation');
    const doc = await upload(env, owner, ws, 'plan-evacuation.txt', v1);
    await newVersion(owner, doc.id, Buffer.from('second'));
    await newVersion(owner, doc.id, Buffer.from('third, the newest'));
    const r = await env.req('POST', `/api/v1/documents/${doc.id}/versions/1/restore`, { token: editor.token });
    expect(r.status, r.body.toString()).toBe(201);
    expect(r.json()).toMatchObject({ id: doc.id, version: 4, size: v1.length, sha256: sha(v1), restoredFrom: 1 });
    const down = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: viewer.token });
    expect(down.body.equals(v1)).toBe(true);
    expect(down.headers['x-coffre-version']).toBe('4');
    const old = await env.req('GET', `/api/v1/documents/${doc.id}/content?version=3`, { token: viewer.token });
    expect(old.body.toString()).toBe('third, the newest');
    const got = await env.req('GET', `/api/v1/documents/${doc.id}`, { token: editor.token });
    expect(got.json().versions[0]).toMatchObject({ version: 4, createdByName: editor.username, sha256: sha(v1) });
    const restores = (await audit('doc.version.restore')).filter((e) => about(e, doc.id));
    expect(restores.length).toBe(1);
    expect(restores[0]!.outcome).toBe('success');
    expect(await userOf(restores[0]!.actor)).toBe(editor.id);
    expect(Object.fromEntries(JSON.parse(restores[0]!.targets!) as [string, string][])).toMatchObject({
      workspace: ws,
      document: doc.id,
      version: '1',
    });
    const writes = (await audit('doc.write')).filter((e) => about(e, doc.id));
    expect(writes.length).toBe(3); // v2, v3 and the restored v4
  });

  it('refuses the newest version (400), an unknown one (404), a trashed document (409)', async () => {
    const doc = await upload(env, owner, ws, 'seul.txt', Buffer.from('only'));
    const newest = await env.req('POST', `/api/v1/documents/${doc.id}/versions/1/restore`, { token: owner.token });
    expect(newest.status).toBe(400);
    expect(newest.json().error.code).toBe('INVALID_INPUT');
    const missing = await env.req('POST', `/api/v1/documents/${doc.id}/versions/9/restore`, { token: owner.token });
    expect(missing.status).toBe(404);
    expect(missing.json().error.code).toBe('VERSION_NOT_FOUND');
    await newVersion(owner, doc.id, Buffer.from('two'));
    expect((await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: owner.token })).status).toBe(200);
    const trashed = await env.req('POST', `/api/v1/documents/${doc.id}/versions/1/restore`, { token: owner.token });
    expect(trashed.status).toBe(409);
    expect(trashed.json().error.code).toBe('DOCUMENT_IN_TRASH');
  });

  it('attack: a viewer gets 403; another workspace’s member and an admin get 404; each denial audited; no version made', async () => {
    const doc = await upload(env, owner, ws, 'confidentiel.txt', Buffer.from('a'));
    await newVersion(owner, doc.id, Buffer.from('b'));
    const at = (u: User) => env.req('POST', `/api/v1/documents/${doc.id}/versions/1/restore`, { token: u.token });
    expect((await at(viewer)).status).toBe(403);
    for (const u of [outsider, admin]) {
      const r = await at(u);
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    }
    // a member of their own workspace cannot reach it through their workspace either
    const other = await upload(env, outsider, otherWs, 'leur.txt', Buffer.from('x'));
    await newVersion(outsider, other.id, Buffer.from('y'));
    expect((await at(outsider)).status).toBe(404);
    const denied = (await audit('doc.version.restore')).filter((e) => e.outcome === 'denied' && about(e, doc.id));
    expect(await Promise.all(denied.map(async (e) => [await userOf(e.actor), e.reason]))).toEqual([
      [viewer.id, 'ROLE_TOO_LOW'],
      [outsider.id, 'NOT_MEMBER'],
      [admin.id, 'NOT_MEMBER'],
      [outsider.id, 'NOT_MEMBER'],
    ]);
    const r = await env.req('GET', `/api/v1/documents/${doc.id}`, { token: owner.token });
    expect(r.json().version).toBe(2);
  });
});

describe('several documents as one streamed zip', () => {
  it('the newest version of each, byte-identical, names kept (accents, duplicates numbered), each download audited', async () => {
    const a = await upload(env, owner, ws, 'Évacuation.pdf', Buffer.from('%PDF evacuation'));
    await newVersion(owner, a.id, Buffer.from('%PDF evacuation v2'));
    const b = await upload(env, editor, ws, 'notes.txt', Buffer.from('notes one'));
    const c = await upload(env, editor, ws, 'notes.txt', Buffer.from('notes two'));
    const big = crypto.randomBytes(3 * 1024 * 1024 + 5);
    const d = await upload(env, owner, ws, 'scan.bin', big);
    const before = (await audit('doc.download')).length;
    const r = await env.req('GET', `/api/v1/workspaces/${ws}/documents/archive?ids=${[a, b, c, d].map((x) => x.id)}`, {
      token: viewer.token,
    });
    expect(r.status, r.body.toString().slice(0, 200)).toBe(200);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="documents-\d{4}-\d\d-\d\d\.zip"$/);
    const files = unzip(r.body);
    expect([...files.keys()].sort()).toEqual(['notes (2).txt', 'notes.txt', 'scan.bin', 'Évacuation.pdf'].sort());
    expect(files.get('Évacuation.pdf')!.toString()).toBe('%PDF evacuation v2');
    expect(files.get('notes.txt')!.toString()).toBe('notes one');
    expect(files.get('notes (2).txt')!.toString()).toBe('notes two');
    expect(sha(files.get('scan.bin')!)).toBe(sha(big));
    const downloads = (await audit('doc.download')).slice(before);
    expect(await Promise.all(downloads.map(async (e) => [await userOf(e.actor), e.outcome]))).toEqual(
      [a, b, c, d].map(() => [viewer.id, 'success']),
    );
    expect([a, b, c, d].map((x, i) => about(downloads[i]!, x.id))).toEqual([true, true, true, true]);
    // the confidential names are in the zip, never in the URL or the audit trail
    expect(JSON.stringify(downloads)).not.toMatch(/notes|vacuation/);
  });

  it('refuses a trashed document (409) and malformed or too many ids (400) before sending anything', async () => {
    const t = await upload(env, owner, ws, 'corbeille.txt', Buffer.from('x'));
    await env.req('DELETE', `/api/v1/documents/${t.id}`, { token: owner.token });
    const r = await env.req('GET', `/api/v1/workspaces/${ws}/documents/archive?ids=${t.id}`, { token: owner.token });
    expect(r.status).toBe(409);
    expect(r.json().error.code).toBe('DOCUMENT_IN_TRASH');
    const many = Array.from({ length: 101 }, () => crypto.randomUUID()).join(',');
    for (const q of ['', 'ids=', 'ids=a%2Fb', `ids=${many}`]) {
      const x = await env.req('GET', `/api/v1/workspaces/${ws}/documents/archive?${q}`, { token: owner.token });
      expect(x.status, q.slice(0, 20)).toBe(400);
    }
  });

  it('attack: another workspace’s document through this workspace, an outsider, an admin: 404, nothing streamed, audited', async () => {
    const mine = await upload(env, owner, ws, 'interne.txt', Buffer.from('internal'));
    const theirs = await upload(env, outsider, otherWs, 'externe.txt', Buffer.from('external'));
    const url = (w: string, ids: string[]) => `/api/v1/workspaces/${w}/documents/archive?ids=${ids.join(',')}`;
    const before = (await audit('doc.download')).filter((e) => e.outcome === 'success').length;
    // a member of both sides of nothing: the owner asks for the outsider's document inside her workspace
    const cross = await env.req('GET', url(ws, [mine.id, theirs.id]), { token: owner.token });
    expect(cross.status).toBe(404);
    expect(cross.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    // the outsider names her document through his own workspace: the check is per document, not per URL
    const smuggle = await env.req('GET', url(otherWs, [theirs.id, mine.id]), { token: outsider.token });
    expect(smuggle.status).toBe(404);
    for (const u of [outsider, admin]) {
      const r = await env.req('GET', url(ws, [mine.id]), { token: u.token });
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe('WORKSPACE_NOT_FOUND');
      expect(r.body.toString()).not.toContain('internal');
    }
    expect((await audit('doc.download')).filter((e) => e.outcome === 'success').length).toBe(before);
    const denied = (await audit('doc.download')).filter((e) => e.outcome === 'denied');
    expect(await Promise.all(denied.map(async (e) => [await userOf(e.actor), e.reason]))).toEqual(
      expect.arrayContaining([
        [owner.id, 'NOT_MEMBER'],
        [outsider.id, 'NOT_MEMBER'],
        [admin.id, 'NOT_MEMBER'],
      ]),
    );
    // anonymous: 401
    expect((await env.req('GET', url(ws, [mine.id]))).status).toBe(401);
  });

  it('a tampered blob aborts the zip: the client never gets a complete archive', async () => {
    const ok = await upload(env, owner, ws, 'bon.txt', Buffer.from('fine'));
    const bad = await upload(env, owner, ws, 'abime.txt', crypto.randomBytes(200_000), metaHeaders('abime.txt'));
    const v = await db()
      .selectFrom('vault_versions')
      .select('blob_id')
      .where('document_id', '=', bad.id)
      .executeTakeFirstOrThrow();
    const file = blobFile(v.blob_id);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 100]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const r = await env
      .req('GET', `/api/v1/workspaces/${ws}/documents/archive?ids=${ok.id},${bad.id}`, { token: owner.token })
      .catch((e: unknown) => e as Error);
    if (!(r instanceof Error)) {
      // whatever arrived is not a valid zip
      const d = tempDir('coffre-zip-');
      fs.writeFileSync(path.join(d, 'x.zip'), r.body);
      expect(() => execFileSync('unzip', ['-tq', path.join(d, 'x.zip')], { stdio: 'pipe' })).toThrow();
    }
  });
});

/** the file of a blob in the local store (sharded by its first two hex digits) */
function blobFile(blobId: string): string {
  const root = env.t.appliance.config.storage.dir;
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.startsWith(blobId)) hits.push(path.join(d, e.name));
    }
  };
  walk(root);
  expect(hits.length).toBe(1);
  return hits[0]!;
}
