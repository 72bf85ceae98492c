import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, tokenFor, type Enrolled, type Signed } from '../auth/helpers.js';
import type { PersonExport } from '../../src/privacy/index.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * GDPR art. 17 through the API, played across roles (real HSM, SQLite, audit trail): only an
 * admin erases, never themselves, only with the name typed again and an explicit choice for the
 * workspaces the person alone owns; afterwards the person's cookie, token and password are dead,
 * their field key is destroyed, the directory says "erased user", the new owner holds the
 * workspace, the audit trail still verifies, and deletion outright is for untouched accounts only.
 */
let env: IdentityEnv;
let admin: Enrolled;
let admin2: Enrolled;
let auditor: Enrolled;
let alice: Enrolled;
let bob: Enrolled;
let carol: Enrolled;
let sAdmin: Signed;
let sAdmin2: Signed;
let sAuditor: Signed;
let sAlice: Signed;
let sBob: Signed;
let sCarol: Signed;
let aliceToken = '';
let wsAlice = '';
let wsCarol = '';
let docCarol = '';

const db = () => env.t.appliance.db.db;
const post = (s: Signed, url: string, payload: unknown) =>
  env.app.inject({
    method: 'POST',
    url: `/api/v1${url}`,
    headers: s.headers,
    payload: payload as Record<string, unknown>,
  });

beforeAll(async () => {
  // the suite's clock jumps minutes ahead while the checkpointer ticks in real time: a cadence that fits
  env = await openIdentityEnv({ COFFRE_CFG_audit__checkpointIntervalMs: '86400000' }, { listen: true });
  admin = await enrolUser(env, 'root', 'admin');
  admin2 = await enrolUser(env, 'root2', 'admin');
  auditor = await enrolUser(env, 'audrey', 'auditor');
  alice = await enrolUser(env, 'alice', 'member');
  bob = await enrolUser(env, 'bob', 'member');
  carol = await enrolUser(env, 'carol', 'member');
  sAdmin = await signIn(env, admin);
  sAdmin2 = await signIn(env, admin2);
  sAuditor = await signIn(env, auditor);
  sAlice = await signIn(env, alice, '198.51.100.21');
  sBob = await signIn(env, bob);
  sCarol = await signIn(env, carol);
  aliceToken = await tokenFor(env, alice);
  await db()
    .updateTable('users')
    .set(await env.t.appliance.identity.users.encryptPhone(alice.id, '+33611223344'))
    .where('id', '=', alice.id)
    .execute();
  wsAlice = ((await post(sAlice, '/workspaces', { name: 'Alice board' })).json() as { id: string }).id;
  wsCarol = ((await post(sCarol, '/workspaces', { name: 'Carol board' })).json() as { id: string }).id;
  const up = await env.https('POST', `/api/v1/workspaces/${wsCarol}/documents`, {
    headers: {
      ...sCarol.headers,
      'content-type': 'application/octet-stream',
      'content-length': '7',
      'content-disposition': 'attachment; filename=minutes.txt',
    },
    body: 'minutes',
  });
  expect(up.statusCode, up.body).toBe(201);
  docCarol = (JSON.parse(up.body) as { id: string }).id;
}, 120_000);

afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

describe('erasure (art. 17)', () => {
  it('plans: the workspaces the person alone owns', async () => {
    const r = await env.app.inject({
      method: 'GET',
      url: `/api/v1/users/${alice.id}/erasure`,
      headers: sAdmin.headers,
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({
      userId: alice.id,
      state: 'active',
      soleOwned: [wsAlice],
      memberships: 1,
      signedIn: true,
      deletable: false,
    });
  });

  it('refuses non-admins, self-erasure, a wrong confirmation and an unsettled workspace, changing nothing', async () => {
    for (const s of [sBob, sAuditor, sAlice])
      expect((await post(s, `/users/${alice.id}/erase`, { confirm: 'alice', trash: true })).statusCode).toBe(403);
    expect(
      (await env.app.inject({ method: 'POST', url: `/api/v1/users/${alice.id}/erase`, payload: { confirm: 'alice' } }))
        .statusCode,
    ).toBe(401);
    const self = await post(sAdmin, `/users/${admin.id}/erase`, { confirm: 'root', trash: true });
    expect([self.statusCode, (self.json() as { error: { code: string } }).error.code]).toEqual([409, 'SELF_ERASE']);
    const wrong = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: 'bob', transferTo: bob.id });
    expect([wrong.statusCode, (wrong.json() as { error: { code: string } }).error.code]).toEqual([
      400,
      'CONFIRMATION_REQUIRED',
    ]);
    const both = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: 'alice', transferTo: bob.id, trash: true });
    expect(both.statusCode).toBe(400);
    const unsettled = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: 'Alice' });
    expect(unsettled.statusCode, unsettled.body).toBe(409);
    expect(unsettled.json()).toMatchObject({
      error: { code: 'ERASE_NEEDS_OWNER', details: { workspaces: [wsAlice] } },
    });
    const toAuditor = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: 'alice', transferTo: auditor.id });
    expect((toAuditor.json() as { error: { code: string } }).error.code).toBe('BAD_NEW_OWNER');
    // still whole: her session works
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: sAlice.headers })).statusCode).toBe(
      200,
    );
    expect(
      (await db().selectFrom('users').select('state').where('id', '=', alice.id).executeTakeFirstOrThrow()).state,
    ).toBe('active');
  });

  it('erases: key destroyed, credentials dead, workspace handed over, "erased user" in the directory', async () => {
    const before = await db().selectFrom('users').selectAll().where('id', '=', alice.id).executeTakeFirstOrThrow();
    const keyRow = await db()
      .selectFrom('data_keys')
      .select(['id', 'wrapped'])
      .where('name', '=', `field:user.${alice.id}`)
      .executeTakeFirstOrThrow();
    expect(before.email_enc).toContain(keyRow.id);
    const r = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: 'alice', transferTo: bob.id });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({
      userId: alice.id,
      workspacesTransferred: [wsAlice],
      workspacesTrashed: [],
      keyDestroyed: true,
      tokensRevoked: 1,
    });
    expect((r.json() as { sessionsEnded: number }).sessionsEnded).toBeGreaterThanOrEqual(1);
    // the key is gone; nothing decrypts the old ciphertext any more
    expect(
      await db().selectFrom('data_keys').select('id').where('id', '=', keyRow.id).executeTakeFirst(),
    ).toBeUndefined();
    await expect(
      env.t.appliance.keys.fields.decrypt(before.email_enc, `users.email:${alice.id}`),
    ).rejects.toMatchObject({ code: expect.any(String) });
    const after = await db().selectFrom('users').selectAll().where('id', '=', alice.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({
      state: 'erased',
      username: 'erased user',
      phone_enc: null,
      phone_index: null,
      password_hash: null,
      totp_secret_enc: null,
      mfa_method: null,
    });
    expect(JSON.stringify(after)).not.toMatch(/alice/i);
    for (const t of ['sessions', 'api_tokens', 'recovery_codes', 'one_time_links', 'auth_known_clients'] as const) {
      expect(await db().selectFrom(t).select('user_id').where('user_id', '=', alice.id).execute(), t).toEqual([]);
    }
    // cookie, token and password are dead
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: sAlice.headers })).statusCode).toBe(
      401,
    );
    expect(
      (
        await env.app.inject({
          method: 'GET',
          url: '/api/v1/auth/me',
          headers: { authorization: `Bearer ${aliceToken}` },
        })
      ).statusCode,
    ).toBe(401);
    const login = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'alice', password: alice.password },
    });
    expect(login.statusCode).toBe(401);
    // bob owns her workspace now
    const ws = await env.app.inject({
      method: 'GET',
      url: `/api/v1/workspaces/${wsAlice}/members`,
      headers: sBob.headers,
    });
    expect(ws.statusCode, ws.body).toBe(200);
    expect(ws.json()).toMatchObject({ members: [expect.objectContaining({ userId: bob.id, role: 'owner' })] });
    // the directory
    const list = (await env.app.inject({ method: 'GET', url: '/api/v1/users', headers: sAuditor.headers })).json() as {
      users: { id: string; username: string; state: string }[];
    };
    expect(list.users.find((u) => u.id === alice.id)).toMatchObject({ username: 'erased user', state: 'erased' });
    // the name is free again (a new person may take it)
    const inv = await post(sAdmin, '/users', { username: 'alice', email: 'new.alice@example.test', role: 'member' });
    expect(inv.statusCode, inv.body).toBe(201);
  });

  it('the audit trail still verifies and holds the erasure with ids only', async () => {
    const v = await env.t.appliance.audit.verify();
    expect(v.ok, JSON.stringify(v)).toBe(true);
    const rec = await db()
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'user.erase')
      .executeTakeFirstOrThrow();
    expect(rec.actor).toBe(`user:${admin.id}`);
    expect(Object.fromEntries(JSON.parse(rec.targets!) as [string, string][])).toMatchObject({
      user: alice.id,
      transferredTo: bob.id,
      workspaces: wsAlice,
    });
    const transfer = await db()
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'workspace.owner.transfer')
      .executeTakeFirstOrThrow();
    expect(transfer.reason).toBe('ERASURE');
  });

  it('what remains exported about an erased person: ids and dates, no name, e-mail or phone', async () => {
    const r = await env.app.inject({ method: 'GET', url: `/api/v1/users/${alice.id}/export`, headers: sAdmin.headers });
    expect(r.statusCode, r.body).toBe(200);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-erased-'));
    try {
      fs.writeFileSync(path.join(dir, 'x.zip'), r.rawPayload);
      const p = JSON.parse(
        execFileSync('unzip', ['-p', path.join(dir, 'x.zip'), 'person.json'], { encoding: 'utf8' }),
      ) as PersonExport;
      expect(p.profile).toMatchObject({
        id: alice.id,
        username: 'erased user',
        email: null,
        phone: null,
        state: 'erased',
      });
      expect(p.sessions).toEqual([]);
      expect(p.tokens).toEqual([]);
      expect(p.audit.map((e) => e.action)).toContain('user.erase');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an erased person cannot be erased again, enabled, re-invited or given a role', async () => {
    const again = await post(sAdmin, `/users/${alice.id}/erase`, { confirm: alice.id, trash: true });
    expect((again.json() as { error: { code: string } }).error.code).toBe('USER_ERASED');
    for (const [url, payload] of [
      [`/users/${alice.id}/enable`, {}],
      [`/users/${alice.id}/invite`, {}],
      [`/users/${alice.id}/reset`, {}],
    ] as const) {
      const r = await post(sAdmin, url, payload);
      expect(r.statusCode, `${url}: ${r.body}`).toBe(409);
    }
    const role = await env.app.inject({
      method: 'PUT',
      url: `/api/v1/users/${alice.id}/role`,
      headers: sAdmin.headers,
      payload: { role: 'admin' },
    });
    expect(role.statusCode).toBe(409);
  });

  it('trash: the workspaces the person alone owns are archived and their documents trashed', async () => {
    const r = await post(sAdmin2, `/users/${carol.id}/erase`, { confirm: carol.id, trash: true });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ workspacesTrashed: [wsCarol], documentsTrashed: 1 });
    expect(
      (
        await db()
          .selectFrom('vault_documents')
          .select('trashed_at')
          .where('id', '=', docCarol)
          .executeTakeFirstOrThrow()
      ).trashed_at,
    ).not.toBeNull();
    expect(
      (await db().selectFrom('workspaces').select('state').where('id', '=', wsCarol).executeTakeFirstOrThrow()).state,
    ).toBe('archived');
  });

  it('deletion outright: only an account that never signed in and holds no membership', async () => {
    const invited = await env.t.appliance.identity.accounts.invite(
      { username: 'dave', email: 'dave@example.test', role: 'member' },
      'local:test',
      {},
    );
    env.secrets.add(invited.enrolUrl.split('/').pop()!);
    const plan = (
      await env.app.inject({ method: 'GET', url: `/api/v1/users/${invited.user.id}/erasure`, headers: sAdmin.headers })
    ).json() as { deletable: boolean };
    expect(plan.deletable).toBe(true);
    expect((await post(sBob, `/users/${invited.user.id}/delete`, { confirm: 'dave' })).statusCode).toBe(403);
    const bobDel = await post(sAdmin, `/users/${bob.id}/delete`, { confirm: 'bob' });
    expect([bobDel.statusCode, (bobDel.json() as { error: { code: string } }).error.code]).toEqual([
      409,
      'USER_NOT_DELETABLE',
    ]);
    const r = await post(sAdmin, `/users/${invited.user.id}/delete`, { confirm: 'dave' });
    expect(r.statusCode, r.body).toBe(200);
    expect(
      await db().selectFrom('users').select('id').where('id', '=', invited.user.id).executeTakeFirst(),
    ).toBeUndefined();
    expect(
      await db().selectFrom('one_time_links').select('id').where('user_id', '=', invited.user.id).execute(),
    ).toEqual([]);
    expect(
      await db()
        .selectFrom('data_keys')
        .select('id')
        .where('name', '=', `field:user.${invited.user.id}`)
        .executeTakeFirst(),
    ).toBeUndefined();
    // the enrolment link is dead
    const enrol = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/enrol',
      payload: {
        token: invited.enrolUrl.split('/').pop(),
        password: `Tangerine-Ladder-${crypto.randomBytes(3).toString('hex')}X`,
      },
    });
    expect(enrol.statusCode).toBe(410);
    expect((await env.t.appliance.audit.verify()).ok).toBe(true);
  });

  it('rows written before per-person keys move under them (privacy.rekey), and erase the same', async () => {
    const old = await enrolUser(env, 'olga', 'member');
    const fields = env.t.appliance.keys.fields;
    // as written before per-person keys: under the shared field:users key
    await db()
      .updateTable('users')
      .set({ email_enc: await fields.encrypt('users', old.email, `users.email:${old.id}`) })
      .where('id', '=', old.id)
      .execute();
    const shared = (
      await db().selectFrom('data_keys').select('id').where('name', '=', 'field:users').executeTakeFirstOrThrow()
    ).id;
    expect(
      (await db().selectFrom('users').select('email_enc').where('id', '=', old.id).executeTakeFirstOrThrow()).email_enc,
    ).toContain(shared);
    expect(await env.t.appliance.privacy.rekeyAll()).toBe(1);
    expect(await env.t.appliance.privacy.rekeyAll()).toBe(0);
    const row = (await env.t.appliance.identity.users.byId(old.id))!;
    const own = (
      await db()
        .selectFrom('data_keys')
        .select('id')
        .where('name', '=', `field:user.${old.id}`)
        .executeTakeFirstOrThrow()
    ).id;
    expect(row.email_enc).toContain(own);
    expect(await env.t.appliance.identity.users.email(row)).toBe(old.email);
    // the shared key still exists (others' TOTP secrets use it); the person's own is what erasure destroys
    const r = await env.t.appliance.privacy.erase(old.id, undefined, 'local:test', {});
    expect(r.keyDestroyed).toBe(true);
  });

  it('the last active admin cannot be erased, even from the appliance itself', async () => {
    await env.t.appliance.identity.accounts.setState(admin2.id, 'disabled', 'local:test', {});
    await expect(env.t.appliance.privacy.erase(admin.id, undefined, 'local:test', {})).rejects.toMatchObject({
      code: 'LAST_ADMIN',
    });
    expect(
      (await db().selectFrom('users').select('state').where('id', '=', admin.id).executeTakeFirstOrThrow()).state,
    ).toBe('active');
    expect((await env.t.appliance.audit.verify()).ok).toBe(true);
  });
});
