import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { opensslVerifies } from './openssl.js';

/**
 * Retention and legal hold, played as the attacker: the owner, an IT admin who made himself an
 * owner of the workspace, and a records manager trying to approve their own change (with a second
 * credential too). Only the Clock is fake.
 */
const DAY = 86_400_000;
let env: VaultEnv;
let owner: User;
let admin: User;
let rm1: User;
let rm1b: User;
let rm2: User;
let ws: string;
let folder: string;

beforeAll(async () => {
  env = await openVaultEnv({
    COFFRE_CFG_vault__trashRetentionDays: '7',
    COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    COFFRE_CFG_auth__tokens__defaultTtlDays: '365',
  });
  owner = await env.user('olga');
  admin = await env.user('adam', 'admin');
  rm1 = await env.user('rita', 'records-manager');
  rm2 = await env.user('remy', 'records-manager');
  // the same person as rm1 with a second token (another sign-in)
  const l = await env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/tokens',
    headers: { authorization: `Bearer ${rm1.token}` },
    payload: { name: 'second', ttlDays: 365 },
  });
  expect(l.statusCode, l.body).toBe(201);
  rm1b = { ...rm1, token: (l.json() as { token: string }).token };
  expect(rm1b.token).not.toBe(rm1.token);
  ws = await env.workspace(admin, 'Patients 2026');
  await env.addMember(admin, ws, owner, 'owner');
  const f = await env.req('POST', `/api/v1/workspaces/${ws}/folders`, {
    token: owner.token,
    json: { name: 'Archives' },
  });
  folder = f.json().id;
}, 120_000);
afterAll(async () => env?.close());

const db = () => env.t.appliance.db.db;
const ask = (u: User, body: unknown) => env.req('POST', '/api/v1/records/requests', { token: u.token, json: body });
const decide = (u: User, id: string, d: 'approve' | 'reject') =>
  env.req('POST', `/api/v1/records/requests/${id}/${d}`, { token: u.token, json: {} });
const trash = (u: User, id: string) => env.req('DELETE', `/api/v1/documents/${id}`, { token: u.token });
const purge = (u: User, id: string) => env.req('POST', `/api/v1/documents/${id}/purge`, { token: u.token, json: {} });

async function policy(scope: { kind: string; id: string }, minDays: number | null): Promise<void> {
  const r = await ask(rm1, { kind: 'retention', scope, minDays });
  expect(r.status, r.body.toString()).toBe(201);
  const a = await decide(rm2, r.json().id, 'approve');
  expect(a.status, a.body.toString()).toBe(200);
}

describe('two people change a retention policy', () => {
  it('the asker cannot approve, whatever credential; owners and admins cannot at all; a second records manager can', async () => {
    const r = await ask(rm1, { kind: 'retention', scope: { kind: 'workspace', id: ws }, minDays: 30 });
    expect(r.status, r.body.toString()).toBe(201);
    const id = r.json().id;
    for (const u of [rm1, rm1b]) {
      const self = await decide(u, id, 'approve');
      expect(self.status).toBe(403);
      expect(self.json().error.code).toBe('SECOND_PERSON_REQUIRED');
    }
    for (const u of [owner, admin]) {
      expect((await decide(u, id, 'approve')).status).toBe(403);
      expect((await ask(u, { kind: 'retention-remove', scope: { kind: 'workspace', id: ws } })).status).toBe(403);
      expect(
        (
          await env.req('POST', '/api/v1/records/holds', {
            token: u.token,
            json: { scope: { kind: 'workspace', id: ws } },
          })
        ).status,
      ).toBe(403);
    }
    // not applied yet
    expect(await db().selectFrom('records_policies').selectAll().execute()).toHaveLength(0);
    const ok = await decide(rm2, id, 'approve');
    expect(ok.status, ok.body.toString()).toBe(200);
    expect(ok.json()).toMatchObject({ state: 'approved', decidedBy: rm2.id, requestedBy: rm1.id });
    expect((await decide(rm2, id, 'approve')).json().error.code).toBe('REQUEST_CLOSED');
    const ov = await env.req('GET', '/api/v1/records/retention', { token: rm2.token });
    expect(ov.json().policies).toEqual([
      expect.objectContaining({
        scope: { kind: 'workspace', id: ws },
        minDays: 30,
        requestedBy: rm1.id,
        approvedBy: rm2.id,
      }),
    ]);
    const denied = await db()
      .selectFrom('audit_events')
      .select(['actor', 'reason'])
      .where('action', '=', 'records.approve')
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied).toHaveLength(2);
    expect(denied.every((d) => d.reason === 'SECOND_PERSON_REQUIRED')).toBe(true);
  });

  it('refuses bad requests precisely, and expired ones', async () => {
    for (const minDays of [0, -1, 1.5, null, 36_501]) {
      const r = await ask(rm1, { kind: 'retention', scope: { kind: 'workspace', id: ws }, minDays });
      expect(r.status, String(minDays)).toBe(400);
    }
    expect(
      await db().selectFrom('records_requests').select('id').where('state', '=', 'pending').execute(),
    ).toHaveLength(0);
    expect(
      (await ask(rm1, { kind: 'retention', scope: { kind: 'document', id: ws }, minDays: 3 })).json().error.code,
    ).toBe('INVALID_INPUT');
    const nf = await ask(rm1, {
      kind: 'retention',
      scope: { kind: 'folder', id: '0123456789abcdef0123456789abcdef' },
      minDays: 3,
    });
    expect(nf.status).toBe(404);
    expect(nf.json().error.code).toBe('FOLDER_NOT_FOUND');
    expect((await ask(rm1, { kind: 'release-hold', holdId: '0123456789abcdef' })).json().error.code).toBe(
      'HOLD_NOT_FOUND',
    );
    const late = await ask(rm1, { kind: 'retention', scope: { kind: 'workspace', id: ws }, minDays: 1 });
    env.clock.advance(8 * DAY);
    const r = await decide(rm2, late.json().id, 'approve');
    expect(r.status).toBe(409);
    expect(r.json().error.code).toBe('REQUEST_CLOSED');
    expect((await db().selectFrom('records_policies').select('min_days').executeTakeFirstOrThrow()).min_days).toBe(30);
  });
});

describe('retention refuses the owner and the admin before term', () => {
  it('no trash, no purge, no purge by the trash sweep, no move out of a longer policy; after term, destruction with a certificate', async () => {
    await policy({ kind: 'folder', id: folder }, 60);
    const early = await upload(env, owner, ws, 'trashed-before.txt', Buffer.from('trashed before the policy'));
    const doc = await upload(env, owner, ws, 'record.txt', Buffer.from('a medical record'));
    const inFolder = await upload(env, owner, ws, 'archived.txt', Buffer.from('in the archives'));
    expect(
      (await env.req('PATCH', `/api/v1/documents/${inFolder.id}`, { token: owner.token, json: { folderId: folder } }))
        .status,
    ).toBe(200);
    // a document trashed before a policy reached it: put it in the trash directly in the database (as if trashed earlier)
    await db()
      .updateTable('vault_documents')
      .set({ trashed_at: env.clock.nowMs(), trashed_by: 'test' })
      .where('id', '=', early.id)
      .execute();

    for (const u of [owner, admin]) {
      const t = await trash(u, doc.id);
      expect(t.status, t.body.toString()).toBe(409);
      expect(t.json().error.code).toBe('RETENTION_ACTIVE');
      expect(t.json().error.details.retainUntil).toBe(new Date(env.clock.nowMs() + 30 * DAY).toISOString());
      const p = await purge(u, early.id);
      expect(p.status).toBe(409);
      expect(p.json().error.code).toBe('RETENTION_ACTIVE');
      // out of the 60-day folder into the 30-day root: refused
      const mv = await env.req('PATCH', `/api/v1/documents/${inFolder.id}`, {
        token: u.token,
        json: { folderId: null },
      });
      expect(mv.status).toBe(409);
      expect(mv.json().error.code).toBe('RETENTION_ACTIVE');
    }
    // the trash sweep leaves the retained document in the trash
    env.clock.advance(8 * DAY);
    await env.t.appliance.vault.purgeExpired('job:vault.purge');
    expect(
      await db().selectFrom('vault_documents').select('id').where('id', '=', early.id).executeTakeFirst(),
    ).toBeTruthy();
    const refusals = await db()
      .selectFrom('audit_events')
      .select(['action', 'reason'])
      .where('outcome', '=', 'denied')
      .where('reason', '=', 'RETENTION_ACTIVE')
      .execute();
    expect(refusals.map((r) => r.action).sort()).toEqual([
      'doc.delete',
      'doc.delete',
      'doc.move',
      'doc.move',
      'doc.purge',
      'doc.purge',
    ]);

    // after term (30 days from deposit)
    env.clock.advance(23 * DAY);
    expect((await trash(owner, doc.id)).status).toBe(200);
    const p = await purge(owner, doc.id);
    expect(p.status, p.body.toString()).toBe(200);
    expect(
      (await env.req('PATCH', `/api/v1/documents/${inFolder.id}`, { token: owner.token, json: { folderId: null } }))
        .status,
    ).toBe(409); // the folder's 60 days still run
    const certs = await env.req('GET', `/api/v1/records/certificates?document=${doc.id}`, { token: rm2.token });
    expect(certs.status).toBe(200);
    const [cert] = certs.json().certificates;
    const body = JSON.parse(cert.body);
    expect(body).toMatchObject({
      type: 'coffre.destruction-certificate',
      object: { kind: 'document', id: doc.id, workspace: ws },
      actor: expect.stringMatching(/^token:/),
    });
    expect(body.versions).toEqual([expect.objectContaining({ version: 1, sha256: doc.sha256, size: doc.size })]);
    expect(body.keysDestroyed).toHaveLength(1);
    expect(
      await db().selectFrom('data_keys').select('id').where('id', '=', body.keysDestroyed[0]).executeTakeFirst(),
    ).toBeUndefined();
    const { createHash } = await import('node:crypto');
    expect(cert.sha256).toBe(createHash('sha256').update(cert.body).digest('hex'));
    expect(cert.body).not.toContain('record.txt');
    // signed by the sealing key: openssl and the certificate alone check it; one changed byte fails
    const seal = await env.t.appliance.seals.certificate();
    expect(body.seal).toEqual({ algorithm: 'ECDSA-P256-SHA256', certificateFingerprint: seal.fingerprint });
    expect(opensslVerifies(Buffer.from(cert.body), cert.signature, seal.pem)).toBe(true);
    expect(opensslVerifies(Buffer.from(cert.body.replace(doc.sha256, '0'.repeat(64))), cert.signature, seal.pem)).toBe(
      false,
    );
    // the trash sweep now destroys the early one too, with its certificate
    await env.t.appliance.vault.purgeExpired('job:vault.purge');
    expect(
      await db().selectFrom('vault_documents').select('id').where('id', '=', early.id).executeTakeFirst(),
    ).toBeUndefined();
    expect(
      await db().selectFrom('records_certificates').select('id').where('document_id', '=', early.id).executeTakeFirst(),
    ).toBeTruthy();
    // owners and admins cannot read certificates listing (records managers only)
    expect((await env.req('GET', '/api/v1/records/certificates', { token: admin.token })).status).toBe(403);
  });
});

describe('legal hold', () => {
  it('blocks destruction even after term; one person places it, two release it', async () => {
    const doc = await upload(env, owner, ws, 'litigation.txt', Buffer.from('evidence'));
    env.clock.advance(31 * DAY); // past the workspace's 30 days
    const h = await env.req('POST', '/api/v1/records/holds', {
      token: rm1.token,
      json: { scope: { kind: 'document', id: doc.id } },
    });
    expect(h.status, h.body.toString()).toBe(201);
    const hold = h.json().id;
    for (const u of [owner, admin]) {
      const t = await trash(u, doc.id);
      expect(t.status).toBe(409);
      expect(t.json().error.code).toBe('LEGAL_HOLD');
    }
    const rel = await ask(rm1, { kind: 'release-hold', holdId: hold });
    expect(rel.status).toBe(201);
    expect((await decide(rm1b, rel.json().id, 'approve')).status).toBe(403);
    expect((await trash(owner, doc.id)).status).toBe(409);
    expect((await decide(rm2, rel.json().id, 'approve')).status).toBe(200);
    expect((await trash(owner, doc.id)).status).toBe(200);
    // a hold on the workspace covers documents in the trash too
    const wsHold = await env.req('POST', '/api/v1/records/holds', {
      token: rm2.token,
      json: { scope: { kind: 'workspace', id: ws } },
    });
    expect(wsHold.status).toBe(201);
    const p = await purge(owner, doc.id);
    expect(p.status).toBe(409);
    expect(p.json().error.code).toBe('LEGAL_HOLD');
    env.clock.advance(8 * DAY);
    await env.t.appliance.vault.purgeExpired('job:vault.purge');
    expect(
      await db().selectFrom('vault_documents').select('id').where('id', '=', doc.id).executeTakeFirst(),
    ).toBeTruthy();
    const actions = (
      await db().selectFrom('audit_events').select('action').where('action', 'like', 'records.%').execute()
    ).map((a) => a.action);
    for (const a of [
      'records.request',
      'records.approve',
      'records.policy.set',
      'records.hold.place',
      'records.hold.release',
    ])
      expect(actions).toContain(a);
  });
});
