import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';

/**
 * A document's history and the auditor's access reports, played by every role: owner, editor,
 * viewer, a member of another workspace, an auditor and an admin who is not a member (admins do
 * not get around need-to-know).
 */
let env: VaultEnv;
let owner: User;
let editor: User;
let viewer: User;
let outsider: User;
let auditor: User;
let admin: User;
let ws: string;
let doc: { id: string };
let other: { id: string };
let folder: string;
let t0: number;
const NAME = 'Confidential-merger-Zephyr.txt';
const HOUR = 3_600_000;

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  owner = await env.user('olga');
  editor = await env.user('eddie');
  viewer = await env.user('vera');
  outsider = await env.user('otto');
  auditor = await env.user('aude', 'auditor');
  admin = await env.user('adam', 'admin');
  ws = await env.workspace(owner, 'Merger');
  await env.workspace(outsider, 'Elsewhere');
  await env.addMember(owner, ws, editor, 'editor');
  t0 = env.clock.nowMs();
  const f = await env.req('POST', `/api/v1/workspaces/${ws}/folders`, { token: owner.token, json: { name: 'Deals' } });
  expect(f.status).toBe(201);
  folder = f.json().id;
  doc = await upload(env, owner, ws, NAME, Buffer.from('the merger terms'));
  expect(
    (await env.req('PATCH', `/api/v1/documents/${doc.id}`, { token: owner.token, json: { folderId: folder } })).status,
  ).toBe(200);
  other = await upload(env, owner, ws, 'other.txt', Buffer.from('unrelated'));
  env.clock.advance(HOUR);
  // sharing: the viewer joins an hour later; then everyone acts on the document
  await env.addMember(owner, ws, viewer, 'viewer');
  expect((await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: viewer.token })).status).toBe(200);
  expect((await env.req('GET', `/api/v1/documents/${doc.id}`, { token: viewer.token })).status).toBe(200);
  env.clock.advance(HOUR);
  expect(
    (await env.req('PATCH', `/api/v1/documents/${doc.id}`, { token: editor.token, json: { description: 'revised' } }))
      .status,
  ).toBe(200);
  expect((await env.req('GET', `/api/v1/documents/${other.id}/content`, { token: editor.token })).status).toBe(200);
  // a refused try by the outsider is part of the document's history too
  expect((await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: outsider.token })).status).toBe(404);
}, 120_000);
afterAll(async () => env?.close());

type Entry = {
  actor: string;
  username: string | null;
  action: string;
  kind: string;
  outcome: string;
  at: string;
  targets: Record<string, string>;
};
const history = async (u: User, id = doc.id, q = '') =>
  env.req('GET', `/api/v1/documents/${id}/history${q}`, { token: u.token });

describe('GET /documents/{id}/history', () => {
  it('owners see who read, downloaded, changed and shared, with user names, and nothing about other documents', async () => {
    const r = await history(owner);
    expect(r.status, r.body.toString()).toBe(200);
    const h = r.json<{ scope: string; entries: Entry[] }>();
    expect(h.scope).toBe('all');
    const seen = (u: User, kind: string, outcome = 'success') =>
      h.entries.some((e) => e.username === u.username && e.kind === kind && e.outcome === outcome);
    expect(seen(viewer, 'download')).toBe(true);
    expect(seen(viewer, 'read')).toBe(true);
    expect(seen(editor, 'change')).toBe(true);
    expect(seen(owner, 'change')).toBe(true); // created, moved
    expect(seen(owner, 'share')).toBe(true); // the viewer was added to the workspace
    expect(
      h.entries.find((e) => e.kind === 'share' && e.action === 'workspace.member.add' && e.targets.user === viewer.id),
    ).toBeTruthy();
    expect(seen(outsider, 'download', 'denied')).toBe(true);
    // the editor's download of another document is not in this one's history
    expect(h.entries.every((e) => e.kind === 'share' || e.targets.document === doc.id)).toBe(true);
    // newest first; ids only: the document's name never appears
    const seqs = h.entries.map((e) => (e as unknown as { seq: number }).seq);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
    expect(r.body.toString()).not.toContain('Zephyr');
  });

  it('other members see their own actions only', async () => {
    for (const [u, mine] of [
      [viewer, ['doc.download', 'doc.read']],
      [editor, ['doc.update']],
    ] as const) {
      const r = await history(u);
      expect(r.status, r.body.toString()).toBe(200);
      const h = r.json<{ scope: string; entries: Entry[] }>();
      expect(h.scope).toBe('own');
      expect(h.entries.length).toBeGreaterThan(0);
      expect(h.entries.every((e) => e.username === u.username)).toBe(true);
      for (const a of mine) expect(h.entries.some((e) => e.action === a)).toBe(true);
      expect(h.entries.some((e) => e.kind === 'share')).toBe(false);
    }
  });

  it('a non-member, an admin who is not a member and an unknown id get the same 404 as the document itself', async () => {
    const unknown = '0123456789abcdef0123456789abcdef';
    const ref = await env.req('GET', `/api/v1/documents/${doc.id}`, { token: outsider.token });
    expect(ref.status).toBe(404);
    const code = ref.json().error.code;
    for (const [u, id] of [
      [outsider, doc.id],
      [admin, doc.id],
      [owner, unknown],
      [outsider, unknown],
    ] as const) {
      const r = await history(u, id);
      expect(r.status, `${u.username} ${id}`).toBe(404);
      expect(r.json().error.code).toBe(code);
      expect(r.json().error.message).toBe(ref.json().error.message);
    }
    // the auditor holds no workspace:use: refused at the gate; anonymous: 401
    expect((await history(auditor)).status).toBe(403);
    expect((await env.req('GET', `/api/v1/documents/${doc.id}/history`)).status).toBe(401);
    // the admin's attempt is itself on the record, as a denial
    const denied = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['actor', 'reason'])
      .where('action', '=', 'doc.history')
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.some((d) => d.reason === 'NOT_MEMBER')).toBe(true);
  });

  it('a period narrows it; a bad period is refused precisely; each look is audited', async () => {
    const from = new Date(t0 + HOUR).toISOString();
    const to = new Date(t0 + 2 * HOUR).toISOString();
    const r = await history(owner, doc.id, `?from=${from}&to=${to}`);
    expect(r.status).toBe(200);
    const e = r.json<{ entries: Entry[] }>().entries;
    expect(e.length).toBeGreaterThan(0);
    expect(e.every((x) => x.at >= from && x.at < to)).toBe(true);
    expect(e.some((x) => x.username === viewer.username && x.kind === 'download')).toBe(true);
    expect(e.some((x) => x.username === editor.username)).toBe(false); // the edit came an hour later
    const bad = await history(owner, doc.id, `?from=${to}&to=${from}`);
    expect(bad.status).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_INPUT');
    expect((await history(owner, doc.id, '?from=yesterday')).status).toBe(400);
    // pagination
    const p1 = await history(owner, doc.id, '?limit=2');
    const page = p1.json<{ entries: Entry[]; nextCursor: string }>();
    expect(page.entries).toHaveLength(2);
    const p2 = await history(owner, doc.id, `?limit=2&cursor=${page.nextCursor}`);
    expect(p2.json<{ entries: { seq: number }[] }>().entries[0]!.seq).toBeLessThan(
      (page.entries[1] as unknown as { seq: number }).seq,
    );
    const looks = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['actor', 'targets'])
      .where('action', '=', 'doc.history')
      .where('outcome', '=', 'success')
      .execute();
    expect(looks.length).toBeGreaterThanOrEqual(4);
    expect(looks.every((l) => l.targets?.includes(doc.id))).toBe(true);
  });
});

describe('GET /records/access-report (auditor)', () => {
  const report = (u: User, q: string) => env.req('GET', `/api/v1/records/access-report?${q}`, { token: u.token });
  const period = () =>
    `from=${new Date(t0 - HOUR).toISOString()}&to=${new Date(env.clock.nowMs() + HOUR).toISOString()}`;

  it('counts accesses per actor and action for a document, and for a folder with what it holds', async () => {
    const r = await report(auditor, `document=${doc.id}&${period()}`);
    expect(r.status, r.body.toString()).toBe(200);
    const rep = r.json<{
      subject: { kind: string; workspaceId: string };
      total: number;
      rows: { username: string; action: string; outcome: string; count: number }[];
    }>();
    expect(rep.subject).toMatchObject({ kind: 'document', workspaceId: ws });
    expect(rep.rows.find((x) => x.username === viewer.username && x.action === 'doc.download')?.count).toBe(1);
    expect(rep.rows.find((x) => x.username === outsider.username && x.outcome === 'denied')).toBeTruthy();
    expect(rep.total).toBe(rep.rows.reduce((a, x) => a + x.count, 0));
    expect(r.body.toString()).not.toContain('Zephyr');

    const f = await report(auditor, `folder=${folder}&${period()}`);
    expect(f.status, f.body.toString()).toBe(200);
    const fr = f.json<{ subject: { documents: number; folders: number }; rows: { action: string }[] }>();
    expect(fr.subject).toMatchObject({ documents: 1, folders: 1 });
    expect(fr.rows.some((x) => x.action === 'doc.download')).toBe(true);
    // the other document (outside the folder) is not counted: the editor never touched this folder's document by download
    expect(
      f
        .json<{ rows: { username: string; action: string }[] }>()
        .rows.some((x) => x.username === editor.username && x.action === 'doc.download'),
    ).toBe(false);

    // a period before anything happened is empty
    const empty = await report(
      auditor,
      `document=${doc.id}&from=${new Date(t0 - 3 * HOUR).toISOString()}&to=${new Date(t0 - 2 * HOUR).toISOString()}`,
    );
    expect(empty.json().total).toBe(0);
    const audited = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select('actor')
      .where('action', '=', 'records.access_report')
      .execute();
    expect(audited.length).toBe(3);
  });

  it('owners, members and admins are refused; bad requests are precise', async () => {
    for (const u of [owner, viewer, admin, outsider])
      expect((await report(u, `document=${doc.id}&${period()}`)).status, u.username).toBe(403);
    const both = await report(auditor, `document=${doc.id}&folder=${folder}&${period()}`);
    expect(both.status).toBe(400);
    expect(both.json().error.code).toBe('INVALID_INPUT');
    expect((await report(auditor, period())).status).toBe(400);
    expect((await report(auditor, `document=${doc.id}`)).status).toBe(400);
    const unknown = await report(auditor, `document=0123456789abcdef0123456789abcdef&${period()}`);
    expect(unknown.status).toBe(404);
    expect(unknown.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    expect((await report(auditor, `folder=0123456789abcdef0123456789abcdef&${period()}`)).json().error.code).toBe(
      'FOLDER_NOT_FOUND',
    );
  });
});
