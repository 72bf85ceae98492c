import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, totpNow, type IdentityEnv } from './support.js';
import { enrolUser, signIn, tokenFor, uniquePassword, type Enrolled, type Signed } from './helpers.js';

/**
 * Identity and access under attack by insiders, through the real HTTPS API: an admin reaching a
 * workspace through a pending invitee (Z6), tokens above the role and roles above the second
 * factor (Z5), tokens that outlive "kill it" (S6), quotas and the directory (Z7), look-alike names
 * (P8), the second factor for every role (M4). Two appliances: `bare` has no mail server (the
 * default install); `mail` has one and relaxes the second factor for members (as an admin may).
 */
let bare: IdentityEnv;
let mail: IdentityEnv;

beforeAll(async () => {
  bare = await openIdentityEnv({ COFFRE_CFG_mail: '{}' }, { listen: true });
  mail = await openIdentityEnv(
    {
      COFFRE_CFG_auth__mfa__requiredRoles: '["admin","backup-operator","auditor"]',
      COFFRE_CFG_vault__defaultQuotaBytes: '1000000',
      COFFRE_CFG_vault__maxWorkspacesPerUser: '3',
    },
    { listen: true },
  );
}, 120_000);
afterAll(async () => {
  for (const e of [bare, mail]) {
    if (!e) continue;
    expectNoSecretsLogged(e);
    await e.close();
  }
});

interface Res {
  status: number;
  body: string;
  headers: Record<string, unknown>;
  json(): any;
}
/** one request over HTTPS, as a session (Signed), a bearer token (string) or anonymous */
async function call(env: IdentityEnv, method: string, path: string, o: { as?: Signed | string; json?: unknown; headers?: Record<string, string> } = {}): Promise<Res> {
  const auth = typeof o.as === 'string' ? { authorization: `Bearer ${o.as}` } : (o.as?.headers ?? {});
  const headers = { ...auth, ...(o.json !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  const r = await env.https(method, `/api/v1${path}`, { headers, ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}) });
  return { status: r.statusCode, body: r.body, headers: r.headers, json: () => JSON.parse(r.body) };
}
const audit = (env: IdentityEnv, action: string) => env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();
const alerts = (env: IdentityEnv, kind: string) => env.t.appliance.db.db.selectFrom('alerts').selectAll().where('kind', '=', kind).execute();

/** enrolment and sign-in of whoever holds a link, over HTTPS (password, then the TOTP code) */
async function takeOver(env: IdentityEnv, link: string, username: string): Promise<{ status: number; session?: Signed }> {
  const password = uniquePassword();
  env.secrets.add(password);
  const e = await call(env, 'POST', '/auth/enrol', { json: { token: link, password } });
  if (e.status !== 200) return { status: e.status };
  const secret = e.json().totp?.secret as string | undefined;
  if (secret) env.secrets.add(secret);
  for (const c of (e.json().recoveryCodes as string[] | undefined) ?? []) env.secrets.add(c);
  let l = await call(env, 'POST', '/auth/login', { json: { username, password } });
  expect(l.status, l.body).toBe(200);
  if (l.json().status === 'mfa_required') {
    env.clock.advance(30_000);
    l = await call(env, 'POST', '/auth/login/mfa', { json: { challenge: l.json().challenge, code: totpNow(secret!, env.clock) } });
    expect(l.status, l.body).toBe(200);
  }
  const cookie = String(l.headers['set-cookie']).split(';')[0]!;
  env.secrets.add(cookie.split('=')[1]!).add(l.json().csrfToken);
  return { status: 200, session: { cookie, csrf: l.json().csrfToken, headers: { cookie, 'x-csrf-token': l.json().csrfToken, origin: new URL(env.publicUrl).origin } } };
}

describe('Z6: no admin gets a usable credential for an account that holds memberships', () => {
  it('attack: owner adds a pending invitee, the admin re-invites (no mail server), enrols as them and reads: refused at every step', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'ada', 'admin'));
    const ownerU = await enrolUser(bare, 'olga', 'member');
    const owner = await signIn(bare, ownerU);
    const ws = (await call(bare, 'POST', '/workspaces', { as: owner, json: { name: 'Fusion Beta' } })).json().id as string;
    expect((await call(bare, 'POST', `/workspaces/${ws}/folders`, { as: owner, json: { name: 'Board minutes' } })).status).toBe(201);

    // the admin invites someone; with no mail server the link comes back to the admin
    const inv = await call(bare, 'POST', '/users', { as: admin, json: { username: 'ivan', email: 'ivan@example.test', role: 'member' } });
    expect(inv.status, inv.body).toBe(201);
    expect(inv.json().mailed).toBe(false);
    const ivan = inv.json().user.id as string;
    bare.secrets.add(inv.json().enrolUrl.split('/').pop());
    // 1. the owner cannot add a person who has not enrolled yet
    const add = await call(bare, 'PUT', `/workspaces/${ws}/members/${ivan}`, { as: owner, json: { role: 'viewer' } });
    expect(add.status, add.body).toBe(409);
    expect(add.json().error.code).toBe('USER_NOT_ENROLLED');
    // 2. a membership from before this rule (written directly) is stripped by the re-issue, and the owner is alerted
    await bare.t.appliance.db.db.insertInto('workspace_members').values({ workspace_id: ws, user_id: ivan, role: 'viewer', added_at: bare.clock.nowMs(), added_by: `user:${ownerU.id}` }).execute();
    const again = await call(bare, 'POST', `/users/${ivan}/invite`, { as: admin });
    expect(again.status, again.body).toBe(200);
    const link = again.json().enrolUrl as string;
    bare.secrets.add(link.split('/').pop()!);
    expect(await bare.t.appliance.db.db.selectFrom('workspace_members').selectAll().where('user_id', '=', ivan).execute()).toEqual([]);
    const al = await alerts(bare, 'auth.admin_credential');
    expect(al.length).toBe(1);
    expect(JSON.parse(al[0]!.targets!)).toMatchObject({ user: ivan, workspaces: ws, owners: ownerU.id });
    expect((await audit(bare, 'user.reinvite')).at(-1)!.targets).toContain(ws);
    // 3. the admin enrols as ivan and signs in: nothing of the workspace is reachable
    const as = await takeOver(bare, link, 'ivan');
    expect(as.status).toBe(200);
    expect((await call(bare, 'GET', '/workspaces', { as: as.session })).json().workspaces).toEqual([]);
    expect((await call(bare, 'GET', `/workspaces/${ws}`, { as: as.session })).status).toBe(404);
    const folders = await call(bare, 'GET', `/workspaces/${ws}/folders`, { as: as.session });
    expect(folders.status).toBe(404);
    expect(folders.body).not.toContain('Board minutes');
  });

  it('an account that has enrolled or signed in never gets a new enrolment link', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'adam', 'admin'));
    const m = await enrolUser(bare, 'marc', 'member');
    const r = await call(bare, 'POST', `/users/${m.id}/invite`, { as: admin });
    expect(r.status).toBe(409);
    expect(r.json().error.code).toBe('USER_NOT_INVITED');
    expect(r.body).not.toMatch(/enrol\//);
    // disabled then enabled: still the user's own account
    expect((await call(bare, 'POST', `/users/${m.id}/disable`, { as: admin })).status).toBe(200);
    expect((await call(bare, 'POST', `/users/${m.id}/enable`, { as: admin })).status).toBe(200);
    expect((await call(bare, 'POST', `/users/${m.id}/invite`, { as: admin })).status).toBe(409);
  });
});

describe('Z5: tokens never above the role; roles never above the second factor', () => {
  it('POST /auth/login issue=token refuses scopes above the role, exactly like POST /auth/tokens; audited', async () => {
    const m = await enrolUser(mail, 'mina', 'member');
    const over = await call(mail, 'POST', '/auth/login', { json: { username: 'mina', password: m.password, issue: 'token', scopes: ['users:manage', 'workspace:use'], ttlDays: 365 } });
    expect(over.status, over.body).toBe(403);
    expect(over.json().error.code).toBe('FORBIDDEN');
    expect(over.body).not.toMatch(/cft_/);
    expect(await mail.t.appliance.db.db.selectFrom('api_tokens').selectAll().where('user_id', '=', m.id).execute()).toEqual([]);
    expect((await audit(mail, 'auth.login')).some((r) => r.reason === 'SCOPE_ABOVE_ROLE' && r.outcome === 'denied')).toBe(true);
    // the same request to POST /auth/tokens from a session: the same refusal
    const s = await signIn(mail, m);
    const viaTokens = await call(mail, 'POST', '/auth/tokens', { as: s, json: { name: 'x', scopes: ['users:manage'] } });
    expect(viaTokens.status).toBe(403);
    // scopes within the role are fine
    const fine = await call(mail, 'POST', '/auth/login', { json: { username: 'mina', password: m.password, issue: 'token', scopes: ['workspace:use'] } });
    expect(fine.status, fine.body).toBe(200);
    mail.secrets.add(fine.json().token);
    expect(fine.json().tokenInfo.scopes).toEqual(['workspace:use']);
  });

  it('a role change revokes the user\'s tokens and ends their sessions', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'alba', 'admin'));
    const m = await enrolUser(mail, 'remi', 'member');
    const s = await signIn(mail, m);
    const t = await tokenFor(mail, m);
    expect((await call(mail, 'GET', '/auth/me', { as: t })).status).toBe(200);
    const r = await call(mail, 'PUT', `/users/${m.id}/role`, { as: admin, json: { role: 'member' } });
    expect(r.status, r.body).toBe(200);
    expect((await call(mail, 'GET', '/auth/me', { as: t })).status).toBe(401);
    expect((await call(mail, 'GET', '/auth/me', { as: s })).status).toBe(401);
  });

  it('a role that requires a second factor waits until the user has one (no "Internal error"); then every session and token starts afresh', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'aline', 'admin'));
    const p = await enrolUser(mail, 'pablo', 'member');
    expect(p.totp).toBeUndefined();
    const promote = await call(mail, 'PUT', `/users/${p.id}/role`, { as: admin, json: { role: 'admin' } });
    expect(promote.status, promote.body).toBe(200);
    expect(promote.json()).toEqual({ status: 'ok', role: 'member', pendingRole: 'admin' });
    // still a member, and still able to sign in
    const s = await signIn(mail, p);
    const me = (await call(mail, 'GET', '/auth/me', { as: s })).json();
    expect(me.user.role).toBe('member');
    expect(me.user.pendingRole).toBe('admin');
    expect((await call(mail, 'GET', '/users', { as: s })).status).toBe(403);
    // the user sets up TOTP: the role takes effect, every session ends
    const prov = await call(mail, 'POST', '/auth/mfa/totp', { as: s });
    expect(prov.status, prov.body).toBe(200);
    const secret = prov.json().secret as string;
    mail.secrets.add(secret);
    mail.clock.advance(30_000);
    const ok = await call(mail, 'POST', '/auth/mfa/totp/confirm', { as: s, json: { code: totpNow(secret, mail.clock), currentPassword: p.password } });
    expect(ok.status, ok.body).toBe(200);
    for (const c of ok.json().recoveryCodes as string[]) mail.secrets.add(c);
    expect((await call(mail, 'GET', '/auth/me', { as: s })).status).toBe(401);
    const pw = await call(mail, 'POST', '/auth/login', { json: { username: 'pablo', password: p.password } });
    expect(pw.json().status).toBe('mfa_required');
    mail.secrets.add(pw.json().challenge);
    const s2 = await signIn(mail, { ...p, totp: secret });
    expect((await call(mail, 'GET', '/users', { as: s2 })).status).toBe(200);
    const roles = await audit(mail, 'user.role');
    expect(roles.some((r) => r.reason === 'PENDING_SECOND_FACTOR')).toBe(true);
    expect(roles.some((r) => r.reason === 'SECOND_FACTOR_SET')).toBe(true);
  });
});

describe('S6: API tokens die with the sessions', () => {
  const alive = (t: string) => call(mail, 'GET', '/auth/me', { as: t }).then((r) => r.status);

  it('an admin\'s "end sessions" revokes the user\'s tokens', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'agnes', 'admin'));
    const u = await enrolUser(mail, 'tess', 'member');
    const t = await tokenFor(mail, u);
    const r = await call(mail, 'POST', `/users/${u.id}/sessions/end`, { as: admin });
    expect(r.status, r.body).toBe(200);
    expect(r.json().tokensRevoked).toBe(1);
    expect(await alive(t)).toBe(401);
  });

  it('a password reset revokes every token', async () => {
    const u = await enrolUser(mail, 'theo', 'member');
    const t = await tokenFor(mail, u);
    expect((await call(mail, 'POST', '/auth/password/forgot', { json: { username: 'theo' } })).status).toBe(202);
    const link = linkIn((await mail.smtp.next('theo@example.test')).raw);
    mail.secrets.add(link.split('/').pop()!);
    const password = uniquePassword();
    mail.secrets.add(password);
    expect((await call(mail, 'POST', '/auth/password/reset', { json: { token: link, password } })).status).toBe(200);
    expect(await alive(t)).toBe(401);
  });

  it('a password change revokes them unless the user keeps them explicitly', async () => {
    const u = await enrolUser(mail, 'tina', 'member');
    const t1 = await tokenFor(mail, u);
    const s = await signIn(mail, u);
    const p2 = uniquePassword();
    mail.secrets.add(p2);
    const r = await call(mail, 'POST', '/auth/password', { as: s, json: { currentPassword: u.password, newPassword: p2 } });
    expect(r.status, r.body).toBe(200);
    expect(r.json().tokensRevoked).toBe(1);
    expect(await alive(t1)).toBe(401);
    const t2 = await tokenFor(mail, { ...u, password: p2 });
    const p3 = uniquePassword();
    mail.secrets.add(p3);
    const keep = await call(mail, 'POST', '/auth/password', { as: s, json: { currentPassword: p2, newPassword: p3, keepTokens: true } });
    expect(keep.status, keep.body).toBe(200);
    expect(keep.json().tokensRevoked).toBe(0);
    expect(await alive(t2)).toBe(200);
  });

  it('POST /auth/logout with a bearer token revokes that token (and only that one)', async () => {
    const u = await enrolUser(mail, 'tom', 'member');
    const t1 = await tokenFor(mail, u);
    const t2 = await tokenFor(mail, u);
    expect((await call(mail, 'POST', '/auth/logout', { as: t1 })).status).toBe(200);
    expect(await alive(t1)).toBe(401);
    expect(await alive(t2)).toBe(200);
  });
});

describe('Z7: quotas and workspaces per person', () => {
  it('a member cannot set a quota of 0 (unlimited) or above the default; admins can; at most vault.maxWorkspacesPerUser workspaces each', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'amelie', 'admin'));
    const qu = await enrolUser(mail, 'quentin', 'member');
    const q = await signIn(mail, qu);
    for (const quotaBytes of [0, 2_000_000]) {
      const r = await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Greedy', quotaBytes } });
      expect(r.status, r.body).toBe(403);
      expect(r.json().error.code).toBe('QUOTA_ADMIN_ONLY');
    }
    expect((await audit(mail, 'access.denied')).some((r) => r.reason === 'QUOTA_ADMIN_ONLY')).toBe(true);
    const dflt = await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Normal' } });
    expect(dflt.status).toBe(201);
    expect((await call(mail, 'GET', `/workspaces/${dflt.json().id}/usage`, { as: q })).json().quotaBytes).toBe(1_000_000);
    const smaller = await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Small', quotaBytes: 500_000 } });
    expect(smaller.status, smaller.body).toBe(201);
    expect((await call(mail, 'POST', '/workspaces', { as: admin, json: { name: 'Archive', quotaBytes: 0 } })).status).toBe(201);
    // the third is the last one; a token of the same person counts with their sessions
    expect((await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Third' } })).status).toBe(201);
    const fourth = await call(mail, 'POST', '/workspaces', { as: await tokenFor(mail, qu), json: { name: 'Fourth' } });
    expect(fourth.status, fourth.body).toBe(409);
    expect(fourth.json().error.code).toBe('WORKSPACE_LIMIT');
  });
});

describe('Z7: the member picker finds one person by exact name or e-mail, over HTTPS', () => {
  it('no prefix search, no search text in the URL', async () => {
    const o = await signIn(mail, await enrolUser(mail, 'oscar', 'member'));
    const target = await enrolUser(mail, 'leonie', 'member');
    const ws = (await call(mail, 'POST', '/workspaces', { as: o, json: { name: 'Picker' } })).json().id as string;
    const pick = (q: string) => call(mail, 'POST', `/workspaces/${ws}/member-candidates`, { as: o, json: { q } });
    for (const q of ['le', 'leo', 'leon', 'leoni', 'ad']) expect((await pick(q)).json().users, q).toEqual([]);
    expect((await pick('Leonie')).json().users).toEqual([{ userId: target.id, username: 'leonie', member: false }]);
    expect((await pick('leonie@example.test')).json().users).toEqual([{ userId: target.id, username: 'leonie', member: false }]);
    expect((await call(mail, 'GET', `/workspaces/${ws}/member-candidates?q=leonie`, { as: o })).status).toBe(404);
  });
});

describe('P8: look-alike user names and invisible characters in names', () => {
  it('a user name whose UTS #39 skeleton matches an existing one is refused (Cyrillic а, dotless ı, digits)', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'root-admin', 'admin'));
    const inv = (username: string) => call(bare, 'POST', '/users', { as: admin, json: { username, email: `${Math.random().toString(36).slice(2)}@example.test`, role: 'member' } });
    const first = await inv('admin');
    expect(first.status, first.body).toBe(201);
    bare.secrets.add(first.json().enrolUrl.split('/').pop());
    for (const lookAlike of ['\u0430dmin', 'adm\u0131n', 'ADMIN', 'ad\u217Fin', 'аdmіn']) {
      const r = await inv(lookAlike);
      expect(r.status, lookAlike).toBe(409);
      expect(r.json().error.code).toBe('USERNAME_TAKEN');
    }
    const other = await inv('admins');
    expect(other.status).toBe(201);
    bare.secrets.add(other.json().enrolUrl.split('/').pop());
    const users = await bare.t.appliance.db.db.selectFrom('users').select('username').execute();
    expect(users.filter((u) => /^.dm.n$/i.test(u.username.normalize('NFKC')))).toHaveLength(1);
  });

  it('document, folder and workspace names refuse invisible format characters', async () => {
    const o = await signIn(bare, await enrolUser(bare, 'nadia', 'member'));
    const bad = ['\u200b', '\u200d', '\u200e', '\u200f', '\u2060', '\u2064', '\ufeff', '\u061c', '\u202e', '\u2066', '\u2069'];
    for (const c of bad) {
      const r = await call(bare, 'POST', '/workspaces', { as: o, json: { name: `Pay${c}roll` } });
      expect(r.status, `U+${c.codePointAt(0)!.toString(16)}`).toBe(400);
    }
    const ws = (await call(bare, 'POST', '/workspaces', { as: o, json: { name: 'Payroll' } })).json().id as string;
    for (const c of bad) {
      const f = await call(bare, 'POST', `/workspaces/${ws}/folders`, { as: o, json: { name: `2026${c}` } });
      expect(f.status, `U+${c.codePointAt(0)!.toString(16)}`).toBe(400);
      expect(f.json().error.code).toBe('INVALID_NAME');
    }
    const doc = await bare.https('POST', `/api/v1/workspaces/${ws}/documents?name=${encodeURIComponent('invoice\u200b.pdf')}`, { headers: { ...o.headers, 'content-type': 'application/octet-stream', 'content-length': '1' }, body: Buffer.from('x') });
    expect(doc.statusCode, doc.body).toBe(400);
    expect((await bare.t.appliance.db.db.selectFrom('vault_folders').selectAll().where('workspace_id', '=', ws).execute()).length).toBe(0);
  });
});

describe('M4: a second factor for every role by default', () => {
  it('members and auditors enrol with TOTP and cannot sign in with a password alone', async () => {
    for (const [name, role] of [['maya', 'member'], ['aurore', 'auditor']] as const) {
      const u: Enrolled = await enrolUser(bare, name, role);
      expect(u.totp, role).toBeDefined();
      const r = await call(bare, 'POST', '/auth/login', { json: { username: name, password: u.password, issue: 'token' } });
      expect(r.status).toBe(200);
      expect(r.json().status).toBe('mfa_required');
      expect(r.body).not.toMatch(/cft_/);
      bare.secrets.add(r.json().challenge);
    }
  });
});

describe('password recovery without a mail server; admins start resets they cannot use', () => {
  it('"forgot password" tells the truth about delivery (the same answer for every account)', async () => {
    for (const username of ['maya', 'nobody-at-all']) {
      const r = await call(bare, 'POST', '/auth/password/forgot', { json: { username } });
      expect(r.status).toBe(202);
      expect(r.json()).toEqual({ status: 'accepted', delivery: 'none' });
    }
    expect((await call(mail, 'POST', '/auth/password/forgot', { json: { username: 'nobody-at-all' } })).json()).toEqual({ status: 'accepted', delivery: 'email' });
  });

  it('an admin-started reset (no mail): the admin gets a link that only the user\'s own second factor completes; owners alerted; 5 wrong codes void it', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'abel', 'admin'));
    const owner = await enrolUser(bare, 'odile', 'member');
    const so = await signIn(bare, owner);
    const user = await enrolUser(bare, 'ursule', 'member');
    const ws = (await call(bare, 'POST', '/workspaces', { as: so, json: { name: 'Legal' } })).json().id as string;
    expect((await call(bare, 'PUT', `/workspaces/${ws}/members/${user.id}`, { as: so, json: { role: 'viewer' } })).status).toBe(200);
    const t = await tokenFor(bare, user);
    const hashOf = async () => (await bare.t.appliance.db.db.selectFrom('users').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow()).password_hash;
    const hash0 = await hashOf();
    const start = async () => {
      const r = await call(bare, 'POST', `/users/${user.id}/reset`, { as: admin });
      expect(r.status, r.body).toBe(200);
      expect(r.json()).toMatchObject({ mailed: false, codeRequired: true });
      bare.secrets.add(r.json().resetUrl.split('/').pop());
      return r.json().resetUrl as string;
    };
    const link = await start();
    const pw = uniquePassword();
    bare.secrets.add(pw);
    // the admin, holding the link, cannot complete it
    const noCode = await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw } });
    expect(noCode.status).toBe(401);
    expect(noCode.json().error.code).toBe('CODE_REQUIRED');
    for (let i = 0; i < 5; i++) expect((await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw, code: String(100000 + i) } })).status).toBe(401);
    bare.clock.advance(30_000);
    expect((await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw, code: totpNow(user.totp!, bare.clock) } })).status).toBe(410);
    expect(await hashOf()).toBe(hash0);
    expect((await call(bare, 'GET', '/auth/me', { as: t })).status).toBe(200);
    // a fresh link, completed by the user with their own code: the password changes, tokens die
    const link2 = await start();
    bare.clock.advance(30_000);
    const done = await call(bare, 'POST', '/auth/password/reset', { json: { token: link2, password: pw, code: totpNow(user.totp!, bare.clock) } });
    expect(done.status, done.body).toBe(200);
    expect((await call(bare, 'GET', '/auth/me', { as: t })).status).toBe(401);
    const al = (await alerts(bare, 'auth.admin_credential')).map((a) => JSON.parse(a.targets!) as Record<string, string>);
    expect(al.some((a) => a.user === user.id && a.owners === owner.id)).toBe(true);
    expect((await audit(bare, 'auth.reset.admin')).length).toBe(2);
    // an admin cannot reset themselves this way
    expect((await call(bare, 'POST', `/users/${(await call(bare, 'GET', '/auth/me', { as: admin })).json().user.id}/reset`, { as: admin })).status).toBe(409);
  });

  it('with a mail server the link goes to the user only, never in the reply', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'axel', 'admin'));
    const u = await enrolUser(mail, 'ulysse', 'member');
    const r = await call(mail, 'POST', `/users/${u.id}/reset`, { as: admin });
    expect(r.status, r.body).toBe(200);
    expect(r.json().mailed).toBe(true);
    expect(r.body).not.toMatch(/reset\//);
    const link = linkIn((await mail.smtp.next('ulysse@example.test')).raw);
    mail.secrets.add(link.split('/').pop()!);
  });

  it('a user who lost both password and second factor: two different admins, each recorded', async () => {
    const a1 = await signIn(bare, await enrolUser(bare, 'anouk', 'admin'));
    const a2 = await signIn(bare, await enrolUser(bare, 'armand', 'admin'));
    const u = await enrolUser(bare, 'lucie', 'member');
    const first = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a1 });
    expect(first.status, first.body).toBe(200);
    expect(first.json()).toEqual({ status: 'requested' });
    const same = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a1 });
    expect(same.status).toBe(409);
    expect(same.json().error.code).toBe('SAME_ADMIN');
    const second = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a2 });
    expect(second.status, second.body).toBe(200);
    expect(second.json().status).toBe('approved');
    const link = second.json().resetUrl as string;
    bare.secrets.add(link.split('/').pop()!);
    const pw = uniquePassword();
    bare.secrets.add(pw);
    const done = await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw } });
    expect(done.status, done.body).toBe(200);
    const secret = done.json().totp.secret as string;
    bare.secrets.add(secret);
    for (const c of done.json().recoveryCodes as string[]) bare.secrets.add(c);
    expect(secret).not.toBe(u.totp);
    // the new factor is the one that works now
    const s = await signIn(bare, { ...u, password: pw, totp: secret });
    expect((await call(bare, 'GET', '/auth/me', { as: s })).status).toBe(200);
    const idOf = async (x: Signed) => `user:${(await call(bare, 'GET', '/auth/me', { as: x })).json().user.id as string}`;
    expect((await audit(bare, 'auth.recovery.request')).map((r) => r.actor)).toContain(await idOf(a1));
    expect((await audit(bare, 'auth.recovery.approve')).find((r) => r.outcome === 'success')!.actor).toBe(await idOf(a2));
    expect((await audit(bare, 'auth.recovery.approve')).filter((r) => r.outcome === 'success')).toHaveLength(1);
  });
});

describe('L4: reads of the directory, exports, token lists and refusals are recorded', () => {
  it('GET /users, token lists, the access-review export, CSRF refusals (aggregated when anonymous)', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'arthur', 'admin'));
    const count = async (action: string) => (await audit(mail, action)).length;
    const before = { list: await count('user.list'), tokens: await count('token.list'), exp: await count('access.review.export'), csrf: await count('auth.csrf') };
    expect((await call(mail, 'GET', '/users', { as: admin })).status).toBe(200);
    expect((await call(mail, 'GET', '/auth/tokens', { as: admin })).status).toBe(200);
    const me = (await call(mail, 'GET', '/auth/me', { as: admin })).json().user.id as string;
    expect((await call(mail, 'GET', `/users/${me}/tokens`, { as: admin })).status).toBe(200);
    expect((await call(mail, 'GET', '/access-reviews/export?format=csv', { as: admin })).status).toBe(200);
    // a cookie request without the CSRF token, and anonymous cross-site sign-ins (a flood from one address)
    expect((await call(mail, 'POST', '/workspaces', { headers: { cookie: admin.cookie, origin: admin.headers.origin! }, json: { name: 'x' } })).status).toBe(403);
    for (let i = 0; i < 20; i++) {
      const r = await call(mail, 'POST', '/auth/login', { headers: { origin: 'https://evil.example' }, json: { username: 'arthur', password: 'x' } });
      expect(r.status, r.body).toBe(403);
    }
    expect(await count('user.list')).toBe(before.list + 1);
    expect(await count('token.list')).toBe(before.tokens + 2);
    expect(await count('access.review.export')).toBe(before.exp + 1);
    const csrf = (await audit(mail, 'auth.csrf')).slice(before.csrf);
    expect(csrf.filter((r) => r.actor === `user:${me}`)).toHaveLength(1);
    expect(csrf.filter((r) => r.actor === 'anonymous')).toHaveLength(1);
  });
});
