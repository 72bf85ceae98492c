import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, tokenFor, type Enrolled, type Signed } from '../auth/helpers.js';
import type { PersonExport } from '../../src/privacy/index.js';

/**
 * GDPR art. 15/20 export through the API (real HSM, SQLite, audit trail): the person's own zip,
 * an admin's zip of anyone (audited), refused to every other role; its contents (JSON and CSV,
 * opened with the stock `unzip`): profile with the decrypted e-mail and phone, memberships with
 * the workspace name, sessions and tokens metadata without any secret or hash, the second
 * factor's kind, and the audit records where the person acts or is a target, none of another's.
 */
let env: IdentityEnv;
let dir: string;
let alice: Enrolled;
let bob: Enrolled;
let admin: Enrolled;
let auditor: Enrolled;
let sa: Signed;
let sb: Signed;
let sAdmin: Signed;
let sAuditor: Signed;
let aliceToken = '';
let workspace = '';
const marker = `MRK${crypto.randomBytes(8).toString('hex')}`;
const phone = '+33612345678';

beforeAll(async () => {
  env = await openIdentityEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-export-'));
  admin = await enrolUser(env, 'root', 'admin');
  auditor = await enrolUser(env, 'audrey', 'auditor');
  alice = await enrolUser(env, 'alice', 'member');
  bob = await enrolUser(env, 'bob', 'member');
  const a = await env.t.appliance.identity.users.byId(alice.id);
  const ph = await env.t.appliance.identity.users.encryptPhone(alice.id, phone);
  await env.t.appliance.db.db.updateTable('users').set(ph).where('id', '=', a!.id).execute();
  sa = await signIn(env, alice, '198.51.100.7');
  sb = await signIn(env, bob, '198.51.100.8');
  sAdmin = await signIn(env, admin);
  sAuditor = await signIn(env, auditor);
  aliceToken = await tokenFor(env, alice, { tokenName: `laptop ${marker}` });
  const ws = await env.app.inject({
    method: 'POST',
    url: '/api/v1/workspaces',
    headers: sa.headers,
    payload: { name: `Board ${marker}` },
  });
  expect(ws.statusCode, ws.body).toBe(201);
  workspace = (ws.json() as { id: string }).id;
}, 120_000);

afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** unzips with Info-ZIP's `unzip` (a stock tool opens it) into a fresh directory */
function unzip(zip: Buffer): Record<string, string> {
  const d = fs.mkdtempSync(path.join(dir, 'z-'));
  const f = path.join(d, 'export.zip');
  fs.writeFileSync(f, zip);
  execFileSync('unzip', ['-q', f, '-d', path.join(d, 'out')]);
  const out = path.join(d, 'out');
  return Object.fromEntries(fs.readdirSync(out).map((n) => [n, fs.readFileSync(path.join(out, n), 'utf8')]));
}

describe('personal data export', () => {
  let files: Record<string, string>;
  let person: PersonExport;

  it('a person downloads their own data as a zip of JSON and CSV', async () => {
    const r = await env.app.inject({
      method: 'GET',
      url: '/api/v1/users/me/export',
      headers: { ...sa.headers, 'user-agent': 'ExportTest/1.0' },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="coffre-person-${alice.id}.zip"`);
    expect(r.headers['cache-control']).toMatch(/no-store/);
    files = unzip(r.rawPayload);
    expect(Object.keys(files).sort()).toEqual([
      'audit.csv',
      'known-clients.csv',
      'memberships.csv',
      'person.json',
      'profile.csv',
      'sessions.csv',
      'tokens.csv',
    ]);
    person = JSON.parse(files['person.json']!) as PersonExport;
  });

  it('holds the profile (decrypted e-mail and phone), the second factor kind and memberships', () => {
    expect(person.format).toBe('coffre.person-export.v1');
    expect(person.profile).toMatchObject({
      id: alice.id,
      username: 'alice',
      email: alice.email,
      phone,
      role: 'member',
      state: 'active',
    });
    expect(person.secondFactor).toEqual({
      method: 'totp',
      totpConfirmed: true,
      recoveryCodesLeft: alice.recovery!.length,
    });
    expect(person.memberships).toEqual([
      expect.objectContaining({ workspaceId: workspace, workspaceName: `Board ${marker}`, role: 'owner' }),
    ]);
    expect(files['profile.csv']!.split('\r\n')[1]).toContain(alice.email);
    expect(files['memberships.csv']).toContain(`Board ${marker}`);
  });

  it('holds sessions and tokens metadata, never a secret or a hash', async () => {
    expect(person.sessions.some((s) => s.ip === '198.51.100.7' && s.endedAt === null)).toBe(true);
    expect(person.tokens).toEqual([expect.objectContaining({ name: `laptop ${marker}`, revokedAt: null })]);
    expect(files['tokens.csv']).toContain(`laptop ${marker}`);
    const db = env.t.appliance.db.db;
    const hashes = [
      ...(await db.selectFrom('sessions').select('secret_hash').where('user_id', '=', alice.id).execute()).map(
        (r) => r.secret_hash,
      ),
      ...(await db.selectFrom('api_tokens').select('token_hash').where('user_id', '=', alice.id).execute()).map(
        (r) => r.token_hash,
      ),
      ...(await db.selectFrom('recovery_codes').select('code_hash').where('user_id', '=', alice.id).execute()).map(
        (r) => r.code_hash,
      ),
    ];
    const u = (await env.t.appliance.identity.users.byId(alice.id))!;
    const secrets = [
      aliceToken,
      sa.cookie.split('=')[1]!,
      alice.password,
      alice.totp!,
      ...alice.recovery!,
      ...hashes,
      u.password_hash!,
      u.totp_secret_enc!,
      u.email_enc,
      u.email_index,
    ];
    const all = Object.values(files).join('\n');
    expect(secrets.filter((s) => all.includes(s))).toEqual([]);
  });

  it('holds the audit records where the person acted or is a target, none of anyone else', () => {
    const actions = person.audit.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['user.invite', 'user.enrol', 'auth.login', 'workspace.create']));
    for (const e of person.audit) {
      const mine =
        e.actor === `user:${alice.id}` ||
        person.tokens.some((t) => e.actor === `token:${t.id}`) ||
        Object.values(e.targets).includes(alice.id);
      expect(mine, `${e.seq} ${e.action} ${e.actor}`).toBe(true);
    }
    expect(person.audit.some((e) => e.actor === `user:${bob.id}` || Object.values(e.targets).includes(bob.id))).toBe(
      false,
    );
    expect(files['audit.csv']!.split('\r\n')[0]).toBe(
      'seq,at,actor,action,outcome,reason,targets,sourceIp,userAgent,requestId,hash',
    );
    expect(files['audit.csv']!.trim().split('\r\n').length).toBe(person.audit.length + 1);
  });

  it("works with the person's API token too", async () => {
    const r = await env.app.inject({
      method: 'GET',
      url: '/api/v1/users/me/export',
      headers: { authorization: `Bearer ${aliceToken}` },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect((JSON.parse(unzip(r.rawPayload)['person.json']!) as PersonExport).profile.id).toBe(alice.id);
  });

  it('an admin exports anyone, and the export is audited with who asked for whom', async () => {
    const r = await env.app.inject({ method: 'GET', url: `/api/v1/users/${bob.id}/export`, headers: sAdmin.headers });
    expect(r.statusCode, r.body).toBe(200);
    const p = JSON.parse(unzip(r.rawPayload)['person.json']!) as PersonExport;
    expect(p.profile).toMatchObject({ id: bob.id, email: bob.email });
    const rec = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'user.export')
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    expect(rec.actor).toBe(`user:${admin.id}`);
    expect(JSON.parse(rec.targets!)).toEqual([['user', bob.id]]);
    // nothing confidential in the record
    expect(JSON.stringify(rec)).not.toContain(bob.email);
    const unknown = await env.app.inject({
      method: 'GET',
      url: `/api/v1/users/${crypto.randomUUID()}/export`,
      headers: sAdmin.headers,
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('another member, an auditor, or nobody cannot export someone else', async () => {
    for (const s of [sb, sAuditor]) {
      const r = await env.app.inject({ method: 'GET', url: `/api/v1/users/${alice.id}/export`, headers: s.headers });
      expect(r.statusCode, r.body).toBe(403);
    }
    const anon = await env.app.inject({ method: 'GET', url: '/api/v1/users/me/export' });
    expect(anon.statusCode).toBe(401);
    const anonOther = await env.app.inject({ method: 'GET', url: `/api/v1/users/${alice.id}/export` });
    expect(anonOther.statusCode).toBe(401);
    // bob's own export says nothing about alice
    const r = await env.app.inject({ method: 'GET', url: '/api/v1/users/me/export', headers: sb.headers });
    expect(r.statusCode).toBe(200);
    const all = Object.values(unzip(r.rawPayload)).join('\n');
    expect(all).not.toContain(alice.id);
    expect(all).not.toContain(marker);
  });
});
