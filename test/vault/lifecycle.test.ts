import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pattern } from '../support/pattern.js';
import { footprint, metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

const DAY = 86_400_000;
let env: VaultEnv;
let owner: User;
let editor: User;
let viewer: User;
let admin: User;
let ws: string;

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_vault__trashRetentionDays: '7', COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  owner = await env.user('olga');
  editor = await env.user('eddie');
  viewer = await env.user('vera');
  admin = await env.user('adam', 'admin');
  ws = await env.workspace(owner, 'Due diligence');
  await env.addMember(owner, ws, editor, 'editor');
  await env.addMember(owner, ws, viewer, 'viewer');
});
afterAll(async () => env?.close());

const db = () => env.t.appliance.db.db;
const audit = async (action: string) =>
  db()
    .selectFrom('audit_events')
    .select(['actor', 'outcome', 'reason', 'targets'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
const octet = { 'content-type': 'application/octet-stream' };

describe('roles in a workspace (need-to-know)', () => {
  it('viewers read; editors write; owners purge; an admin who is not a member sees nothing', async () => {
    const doc = await upload(env, editor, ws, 'plan.txt', Buffer.from('the plan'));
    // viewer: reads, lists, downloads; cannot write
    expect((await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: viewer.token })).status).toBe(200);
    expect((await env.req('GET', `/api/v1/workspaces/${ws}/documents`, { token: viewer.token })).status).toBe(200);
    const vUp = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: viewer.token,
      headers: { ...octet, ...metaHeaders('v.txt') },
      body: 'x',
    });
    expect(vUp.status).toBe(403);
    expect(
      (await env.req('PATCH', `/api/v1/documents/${doc.id}`, { token: viewer.token, json: { name: 'x' } })).status,
    ).toBe(403);
    expect((await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: viewer.token })).status).toBe(403);
    // editor: trashes and restores, cannot purge
    expect((await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: editor.token })).status).toBe(200);
    expect((await env.req('POST', `/api/v1/documents/${doc.id}/purge`, { token: editor.token })).status).toBe(403);
    expect((await env.req('POST', `/api/v1/documents/${doc.id}/restore`, { token: editor.token })).status).toBe(200);
    // admin (appliance role) without membership: nothing, not even existence
    for (const p of [
      `/api/v1/workspaces/${ws}/documents`,
      `/api/v1/documents/${doc.id}`,
      `/api/v1/documents/${doc.id}/content`,
      `/api/v1/workspaces/${ws}/usage`,
    ]) {
      const r = await env.req('GET', p, { token: admin.token });
      expect(r.status, p).toBe(404);
      expect(r.body.toString()).not.toContain('the plan');
    }
    const denied = await audit('doc.download');
    expect(
      denied.some(
        (e) =>
          e.actor.startsWith('token:') &&
          e.outcome === 'denied' &&
          e.reason === 'NOT_MEMBER' &&
          e.targets?.includes(doc.id),
      ),
    ).toBe(true);
    // anonymous
    expect((await env.req('GET', `/api/v1/documents/${doc.id}/content`)).status).toBe(401);
  });
});

describe('trash, restore and crypto-shredding', () => {
  it('trash hides and blocks; restore brings back; after the retention the data keys are destroyed and the blobs collected', async () => {
    const data = new Pattern(42).slice(0, 300_000);
    const doc = await upload(env, editor, ws, 'contract.pdf', data);
    const v2 = await env.req('POST', `/api/v1/documents/${doc.id}/versions`, {
      token: editor.token,
      headers: octet,
      body: data.subarray(0, 1000),
    });
    expect(v2.status).toBe(201);
    const versions = await db()
      .selectFrom('vault_versions')
      .select(['key_id', 'blob_id'])
      .where('document_id', '=', doc.id)
      .execute();
    expect(versions).toHaveLength(2);
    const used = (await env.req('GET', `/api/v1/workspaces/${ws}/usage`, { token: owner.token })).json().usedBytes;

    const t = await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: editor.token });
    expect(t.status).toBe(200);
    expect(new Date(t.json().purgeAfter).getTime() - new Date(t.json().trashedAt).getTime()).toBe(7 * DAY);
    const live = (await env.req('GET', `/api/v1/workspaces/${ws}/documents`, { token: owner.token }))
      .json()
      .items.map((i: { id: string }) => i.id);
    expect(live).not.toContain(doc.id);
    const trash = (await env.req('GET', `/api/v1/workspaces/${ws}/documents?trash=true`, { token: owner.token }))
      .json()
      .items.map((i: { id: string }) => i.id);
    expect(trash).toContain(doc.id);
    const blocked = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: owner.token });
    expect(blocked.status).toBe(409);
    expect(blocked.json().error.code).toBe('DOCUMENT_IN_TRASH');
    expect(
      (
        await env.req('POST', `/api/v1/documents/${doc.id}/versions`, {
          token: editor.token,
          headers: octet,
          body: 'x',
        })
      ).status,
    ).toBe(409);

    expect((await env.req('POST', `/api/v1/documents/${doc.id}/restore`, { token: editor.token })).status).toBe(200);
    expect(
      (await env.req('GET', `/api/v1/documents/${doc.id}/content?version=1`, { token: viewer.token })).body.equals(
        data,
      ),
    ).toBe(true);

    expect((await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: editor.token })).status).toBe(200);
    // before the retention period: the job leaves it alone
    env.clock.advance(6 * DAY);
    await env.t.appliance.scheduler.run('vault.trash-purge', { trigger: 'cli', actor: 'local:test' });
    expect((await env.req('POST', `/api/v1/documents/${doc.id}/restore`, { token: editor.token })).status).toBe(200);
    expect((await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: editor.token })).status).toBe(200);
    env.clock.advance(7 * DAY + 1);
    const run = await env.t.appliance.scheduler.run<{ documents: number; versions: number }>('vault.trash-purge', {
      trigger: 'cli',
      actor: 'local:test',
    });
    expect(run.result).toMatchObject({ documents: 1, versions: 2 });

    // crypto-shredded: the wrapped data keys are gone (nobody, admin included, can decrypt), so are the blobs and rows
    for (const v of versions) {
      expect(
        await db().selectFrom('data_keys').select('id').where('id', '=', v.key_id).executeTakeFirst(),
      ).toBeUndefined();
      await expect(env.t.appliance.keys.dataKeys.get(v.key_id)).rejects.toMatchObject({ code: 'DATA_KEY_NOT_FOUND' });
      expect(await env.t.appliance.blobs.store.stat(v.blob_id)).toBeNull();
    }
    expect((await env.req('GET', `/api/v1/documents/${doc.id}`, { token: owner.token })).status).toBe(404);
    expect((await env.req('POST', `/api/v1/documents/${doc.id}/restore`, { token: owner.token })).status).toBe(404);
    const after = (await env.req('GET', `/api/v1/workspaces/${ws}/usage`, { token: owner.token })).json().usedBytes;
    expect(used - after).toBe(300_000 + 1000);
    const purged = await audit('doc.purge');
    expect(
      purged.some((e) => e.actor === 'local:test' && e.reason === 'TRASH_RETENTION' && e.targets?.includes(doc.id)),
    ).toBe(true);
  });

  it('an owner can purge a trashed document at once', async () => {
    const doc = await upload(env, owner, ws, 'draft.txt', Buffer.from('draft'));
    expect((await env.req('POST', `/api/v1/documents/${doc.id}/purge`, { token: owner.token })).json().error.code).toBe(
      'DOCUMENT_NOT_IN_TRASH',
    );
    await env.req('DELETE', `/api/v1/documents/${doc.id}`, { token: owner.token });
    const r = await env.req('POST', `/api/v1/documents/${doc.id}/purge`, { token: owner.token });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ id: doc.id, versions: 1, bytes: 5 });
    expect((await env.req('GET', `/api/v1/documents/${doc.id}`, { token: owner.token })).status).toBe(404);
  });
});

describe('quota', () => {
  it('refuses what would exceed the workspace quota (declared or streamed), persisting nothing; purge gives the room back', async () => {
    const small = await env.workspace(owner, 'Small', 1_000_000);
    const first = await upload(env, owner, small, 'a.bin', new Pattern(1).slice(0, 600_000));
    const before = await footprint(env);
    const declared = await env.req('POST', `/api/v1/workspaces/${small}/documents`, {
      token: owner.token,
      headers: { ...octet, ...metaHeaders('b.bin') },
      body: new Pattern(2).slice(0, 600_000),
    });
    expect(declared.status).toBe(413);
    expect(declared.json().error.code).toBe('QUOTA_EXCEEDED');
    const streamed = await env
      .req('POST', `/api/v1/workspaces/${small}/documents`, {
        token: owner.token,
        headers: { ...octet, ...metaHeaders('c.bin') },
        body: new Pattern(3).stream(600_000),
      })
      .catch(() => ({ status: 413, json: () => ({ error: { code: 'QUOTA_EXCEEDED' } }) }));
    expect(streamed.status).toBe(413);
    expect(streamed.json().error.code).toBe('QUOTA_EXCEEDED');
    expect(await footprint(env)).toEqual(before);
    const usage = (await env.req('GET', `/api/v1/workspaces/${small}/usage`, { token: owner.token })).json();
    expect(usage).toEqual({ usedBytes: 600_000, quotaBytes: 1_000_000, documents: 1 });
    // trash still counts; purging frees it
    await env.req('DELETE', `/api/v1/documents/${first.id}`, { token: owner.token });
    expect(
      (
        await env.req('POST', `/api/v1/workspaces/${small}/documents`, {
          token: owner.token,
          headers: { ...octet, ...metaHeaders('d.bin') },
          body: new Pattern(4).slice(0, 600_000),
        })
      ).status,
    ).toBe(413);
    await env.req('POST', `/api/v1/documents/${first.id}/purge`, { token: owner.token });
    expect(
      (
        await env.req('POST', `/api/v1/workspaces/${small}/documents`, {
          token: owner.token,
          headers: { ...octet, ...metaHeaders('e.bin') },
          body: new Pattern(5).slice(0, 600_000),
        })
      ).status,
    ).toBe(201);
  });
});

describe('folders, listing and search', () => {
  it('lists by pages, searches names and tags (decrypted in memory), filters by folder', async () => {
    const space = await env.workspace(owner, 'Listing');
    const f = (
      await env.req('POST', `/api/v1/workspaces/${space}/folders`, { token: owner.token, json: { name: 'Board' } })
    ).json();
    const sub = (
      await env.req('POST', `/api/v1/workspaces/${space}/folders`, {
        token: owner.token,
        json: { name: '2026', parentId: f.id },
      })
    ).json();
    const names: string[] = [];
    for (let i = 0; i < 25; i++) {
      const name = i % 5 === 0 ? `Minutes ${i}.pdf` : `report-${i}.txt`;
      names.push(name);
      env.clock.advance(1000);
      const tags = i % 5 === 0 ? ['Board', 'signed'] : undefined;
      const folder = i % 2 === 0 ? `?folderId=${sub.id}` : '';
      const r = await env.req('POST', `/api/v1/workspaces/${space}/documents${folder}`, {
        token: owner.token,
        headers: { ...octet, ...metaHeaders(name, tags ? { tags } : {}) },
        body: `doc ${i}`,
      });
      expect(r.status).toBe(201);
    }
    // pages of 10 by creation time, newest first, with a cursor
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { items: { name: string }[]; next: string | null } = (
        await env.req('GET', `/api/v1/workspaces/${space}/documents?limit=10${cursor ? `&cursor=${cursor}` : ''}`, {
          token: owner.token,
        })
      ).json();
      seen.push(...r.items.map((i) => i.name));
      cursor = r.next;
    } while (cursor);
    expect(seen).toEqual([...names].reverse());
    // search by name: case-insensitive substring
    const search = `/api/v1/workspaces/${space}/documents/search`;
    const q = (await env.req('POST', search, { token: owner.token, json: { q: 'MINUTES' } })).json();
    expect(q.total).toBe(5);
    expect(q.items.map((i: { name: string }) => i.name)).toEqual([
      'Minutes 0.pdf',
      'Minutes 10.pdf',
      'Minutes 15.pdf',
      'Minutes 20.pdf',
      'Minutes 5.pdf',
    ]);
    // by tag
    const t = (await env.req('POST', search, { token: owner.token, json: { tag: 'board' } })).json();
    expect(t.total).toBe(5);
    expect(t.items[0].tags).toEqual(['Board', 'signed']);
    // by folder
    const inSub = (
      await env.req('GET', `/api/v1/workspaces/${space}/documents?folderId=${sub.id}&limit=100`, { token: owner.token })
    ).json();
    expect(inSub.items).toHaveLength(13);
    const root = (
      await env.req('GET', `/api/v1/workspaces/${space}/documents?folderId=root&limit=100`, { token: owner.token })
    ).json();
    expect(root.items).toHaveLength(12);
    // names never reach the database in plaintext
    const rows = await db()
      .selectFrom('vault_documents')
      .select('name_enc')
      .where('workspace_id', '=', space)
      .execute();
    expect(rows.every((r) => r.name_enc.startsWith('cf1.') && !r.name_enc.includes('Minutes'))).toBe(true);
  });

  it('folders: nest, rename, move (never into themselves), delete only when empty', async () => {
    const space = await env.workspace(owner, 'Folders');
    const mk = async (name: string, parentId?: string) =>
      (
        await env.req('POST', `/api/v1/workspaces/${space}/folders`, {
          token: owner.token,
          json: { name, ...(parentId ? { parentId } : {}) },
        })
      ).json();
    const a = await mk('A');
    const b = await mk('B', a.id);
    const c = await mk('C', b.id);
    const cycle = await env.req('PATCH', `/api/v1/folders/${a.id}`, { token: owner.token, json: { parentId: c.id } });
    expect(cycle.status).toBe(409);
    expect(cycle.json().error.code).toBe('FOLDER_CYCLE');
    const renamed = await env.req('PATCH', `/api/v1/folders/${c.id}`, {
      token: owner.token,
      json: { name: 'C renamed', parentId: a.id },
    });
    expect(renamed.json()).toMatchObject({ name: 'C renamed', parentId: a.id });
    const all = (
      await env.req('GET', `/api/v1/workspaces/${space}/folders?parentId=all`, { token: owner.token })
    ).json().folders;
    expect(all.map((x: { name: string }) => x.name)).toEqual(['A', 'B', 'C renamed']);
    const doc = await env.req('POST', `/api/v1/workspaces/${space}/documents?folderId=${b.id}`, {
      token: owner.token,
      headers: { ...octet, ...metaHeaders('in-b.txt') },
      body: 'x',
    });
    expect((await env.req('DELETE', `/api/v1/folders/${b.id}`, { token: owner.token })).json().error.code).toBe(
      'FOLDER_NOT_EMPTY',
    );
    // move the document out, then B can go
    const moved = await env.req('PATCH', `/api/v1/documents/${doc.json().id}`, {
      token: owner.token,
      json: { folderId: null, tags: ['x'] },
    });
    expect(moved.json()).toMatchObject({ folderId: null, tags: ['x'] });
    expect((await env.req('DELETE', `/api/v1/folders/${b.id}`, { token: owner.token })).status).toBe(204);
  });
});

describe('integrity', () => {
  const alerts = async () =>
    db().selectFrom('alerts').select(['kind', 'severity']).where('kind', '=', 'vault.integrity').execute();

  it('a tampered blob aborts the download before the bad chunk is released and raises an alert', async () => {
    const data = new Pattern(99).slice(0, 3 * 1024 * 1024);
    const doc = await upload(env, owner, ws, 'tamper-blob.bin', data);
    const v = await db()
      .selectFrom('vault_versions')
      .select('blob_id')
      .where('document_id', '=', doc.id)
      .executeTakeFirstOrThrow();
    const file = path.join(env.t.appliance.config.storage.dir, v.blob_id.slice(0, 2), v.blob_id);
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(1);
    const at = 2 * 1024 * 1024 + 100; // inside chunk 1
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x01;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    const n = (await alerts()).length;
    const r = await env
      .req('GET', `/api/v1/documents/${doc.id}/content`, { token: owner.token })
      .catch((e: Error) => e);
    if (!(r instanceof Error)) expect(r.body.length).toBeLessThan(data.length);
    await expect.poll(async () => (await alerts()).length).toBe(n + 1);
    const failures = (await audit('doc.download')).filter((e) => e.outcome === 'failure' && e.reason === 'INTEGRITY');
    expect(failures.some((e) => e.targets?.includes(doc.id))).toBe(true);
  });

  it('a recorded SHA-256 that does not match aborts the response before its end and raises an alert', async () => {
    const data = new Pattern(98).slice(0, 2 * 1024 * 1024 + 7);
    const doc = await upload(env, owner, ws, 'tamper-sha.bin', data);
    await db()
      .updateTable('vault_versions')
      .set({ sha256: '0'.repeat(64), sha256_enc: null })
      .where('document_id', '=', doc.id)
      .execute();
    const n = (await alerts()).length;
    const r = await env
      .req('GET', `/api/v1/documents/${doc.id}/content`, { token: owner.token })
      .catch((e: Error) => e);
    if (!(r instanceof Error)) expect(r.body.length).toBeLessThan(data.length);
    await expect.poll(async () => (await alerts()).length).toBe(n + 1);
  });
});

describe('audit', () => {
  it('records writes with the change and reads before the data, with ids only', async () => {
    const doc = await upload(env, editor, ws, 'Secret Merger Plan.docx', Buffer.from('shh'));
    await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: viewer.token });
    const created = (await audit('doc.create')).filter((e) => e.targets?.includes(doc.id));
    const read = (await audit('doc.download')).filter((e) => e.targets?.includes(doc.id) && e.outcome === 'success');
    expect(created).toEqual([
      expect.objectContaining({ actor: expect.stringMatching(/^(user|token):/), outcome: 'success' }),
    ]);
    expect(read).toHaveLength(1);
    const all = await db().selectFrom('audit_events').select(['targets', 'reason', 'action']).execute();
    expect(JSON.stringify(all)).not.toContain('Secret Merger');
  });
});
