import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, totpNow, type IdentityEnv } from './support.js';
import { enrolUser, signIn, tokenFor, uniquePassword, type Signed } from './helpers.js';
import { audit, call } from './attack.js';

/**
 * Identity and access under attack by insiders, through the real HTTPS API, on an appliance with a
 * mail server whose admin relaxed the second factor for members (as auth.mfa.requiredRoles
 * allows): tokens above the role and roles above the second factor (Z5), tokens that outlive
 * "kill it" (S6), quotas and the directory (Z7), reads and refusals in the audit trail (L4).
 */
let mail: IdentityEnv;

beforeAll(async () => {
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
  if (!mail) return;
  expectNoSecretsLogged(mail);
  await mail.close();
});

describe('Z5: tokens never above the role; roles never above the second factor', () => {
  it('POST /auth/login issue=token refuses scopes above the role, exactly like POST /auth/tokens; audited', async () => {
    const m = await enrolUser(mail, 'mina', 'member');
    const over = await call(mail, 'POST', '/auth/login', {
      json: {
        username: 'mina',
        password: m.password,
        issue: 'token',
        scopes: ['users:manage', 'workspace:use'],
        ttlDays: 365,
      },
    });
    expect(over.status, over.body).toBe(403);
    expect(over.json().error.code).toBe('FORBIDDEN');
    expect(over.body).not.toMatch(/cft_/);
    expect(
      await mail.t.appliance.db.db.selectFrom('api_tokens').selectAll().where('user_id', '=', m.id).execute(),
    ).toEqual([]);
    expect(
      (await audit(mail, 'auth.login')).some((r) => r.reason === 'SCOPE_ABOVE_ROLE' && r.outcome === 'denied'),
    ).toBe(true);
    // the same request to POST /auth/tokens from a session: the same refusal
    const s = await signIn(mail, m);
    const viaTokens = await call(mail, 'POST', '/auth/tokens', {
      as: s,
      json: { name: 'x', scopes: ['users:manage'] },
    });
    expect(viaTokens.status).toBe(403);
    // scopes within the role are fine
    const fine = await call(mail, 'POST', '/auth/login', {
      json: { username: 'mina', password: m.password, issue: 'token', scopes: ['workspace:use'] },
    });
    expect(fine.status, fine.body).toBe(200);
    mail.secrets.add(fine.json().token);
    expect(fine.json().tokenInfo.scopes).toEqual(['workspace:use']);
  });

  it("a role change revokes the user's tokens and ends their sessions", async () => {
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
    const ok = await call(mail, 'POST', '/auth/mfa/totp/confirm', {
      as: s,
      json: { code: totpNow(secret, mail.clock), currentPassword: p.password },
    });
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
    const r = await call(mail, 'POST', '/auth/password', {
      as: s,
      json: { currentPassword: u.password, newPassword: p2 },
    });
    expect(r.status, r.body).toBe(200);
    expect(r.json().tokensRevoked).toBe(1);
    expect(await alive(t1)).toBe(401);
    const t2 = await tokenFor(mail, { ...u, password: p2 });
    const p3 = uniquePassword();
    mail.secrets.add(p3);
    const keep = await call(mail, 'POST', '/auth/password', {
      as: s,
      json: { currentPassword: p2, newPassword: p3, keepTokens: true },
    });
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
    expect((await call(mail, 'GET', `/workspaces/${dflt.json().id}/usage`, { as: q })).json().quotaBytes).toBe(
      1_000_000,
    );
    const smaller = await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Small', quotaBytes: 500_000 } });
    expect(smaller.status, smaller.body).toBe(201);
    expect(
      (await call(mail, 'POST', '/workspaces', { as: admin, json: { name: 'Archive', quotaBytes: 0 } })).status,
    ).toBe(201);
    // the third is the last one; a token of the same person counts with their sessions
    expect((await call(mail, 'POST', '/workspaces', { as: q, json: { name: 'Third' } })).status).toBe(201);
    const fourth = await call(mail, 'POST', '/workspaces', { as: await tokenFor(mail, qu), json: { name: 'Fourth' } });
    expect(fourth.status, fourth.body).toBe(409);
    expect(fourth.json().error.code).toBe('WORKSPACE_LIMIT');
  });
});

describe('Z7: the quota asked at creation: absent or null is the default, 0 unlimited, a number that many bytes', () => {
  it('POST /workspaces: null never means unlimited, for an admin or a member; 0 and more than the default are for admins only', async () => {
    // two admins: vault.maxWorkspacesPerUser is 3 here
    const admin = await signIn(mail, await enrolUser(mail, 'null-admin', 'admin'));
    const admin2 = await signIn(mail, await enrolUser(mail, 'null-admin-2', 'admin'));
    const member = await signIn(mail, await enrolUser(mail, 'null-member', 'member'));
    const quotaOf = async (as: Signed, json: Record<string, unknown>) => {
      const r = await call(mail, 'POST', '/workspaces', { as, json });
      expect(r.status, `${JSON.stringify(json)}: ${r.body}`).toBe(201);
      return (await call(mail, 'GET', `/workspaces/${r.json().id}/usage`, { as })).json().quotaBytes as number | null;
    };
    // the default is 1 MB here; `usage` shows null for unlimited
    expect(await quotaOf(admin, { name: 'A-null', quotaBytes: null })).toBe(1_000_000);
    expect(await quotaOf(admin, { name: 'A-absent' })).toBe(1_000_000);
    expect(await quotaOf(admin, { name: 'A-default', quotaBytes: 'default' })).toBe(1_000_000);
    expect(await quotaOf(admin2, { name: 'A-zero', quotaBytes: 0 })).toBeNull();
    expect(await quotaOf(admin2, { name: 'A-big', quotaBytes: 7_000_000 })).toBe(7_000_000);
    expect(await quotaOf(member, { name: 'M-null', quotaBytes: null })).toBe(1_000_000);
    const count = async () =>
      Number(
        (
          await mail.t.appliance.db.db
            .selectFrom('workspaces')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count();
    for (const quotaBytes of [0, '0', 1_000_001]) {
      const r = await call(mail, 'POST', '/workspaces', { as: member, json: { name: 'M-greedy', quotaBytes } });
      expect(r.status, r.body).toBe(403);
      expect(r.json().error.code).toBe('QUOTA_ADMIN_ONLY');
    }
    for (const quotaBytes of [-1, 1.5, 'lots', 'null', [], {}]) {
      const r = await call(mail, 'POST', '/workspaces', { as: admin, json: { name: 'A-bad', quotaBytes } });
      expect(r.status, `${JSON.stringify(quotaBytes)}: ${r.body}`).toBe(400);
    }
    expect(await count()).toBe(before);
  });
});

describe('Z7: an admin raises the quota of an existing workspace; nobody else can', () => {
  it('PATCH /workspaces/{id}/quota: admins only (not even the owner), audited with old and new values, precise 4xx, nothing changed on refusal', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'quota-admin', 'admin'));
    const owner = await signIn(mail, await enrolUser(mail, 'quota-owner', 'member'));
    const ws = (await call(mail, 'POST', '/workspaces', { as: owner, json: { name: 'Growing' } })).json().id as string;
    const quota = async () =>
      (await call(mail, 'GET', `/workspaces/${ws}/usage`, { as: owner })).json().quotaBytes as number;
    expect(await quota()).toBe(1_000_000);
    // the owner (a member) cannot raise it, nor set it unlimited
    for (const quotaBytes of [5_000_000, 0]) {
      const r = await call(mail, 'PATCH', `/workspaces/${ws}/quota`, { as: owner, json: { quotaBytes } });
      expect(r.status, r.body).toBe(403);
    }
    expect(await quota()).toBe(1_000_000);
    // bad input: precise 400s, nothing changed
    for (const json of [
      { quotaBytes: -1 },
      { quotaBytes: 'lots' },
      { quotaBytes: 1.5 },
      {},
      { quotaBytes: 5, name: 'x' },
      { quotaBytes: null },
    ]) {
      const r = await call(mail, 'PATCH', `/workspaces/${ws}/quota`, { as: admin, json });
      expect(r.status, JSON.stringify(json)).toBe(400);
    }
    expect(
      (await call(mail, 'PATCH', '/workspaces/no-such-workspace/quota', { as: admin, json: { quotaBytes: 5 } })).status,
    ).toBe(404);
    expect(await quota()).toBe(1_000_000);
    // the admin (not a member) raises it: the answer names no workspace content
    const up = await call(mail, 'PATCH', `/workspaces/${ws}/quota`, { as: admin, json: { quotaBytes: 5_000_000 } });
    expect(up.status, up.body).toBe(200);
    expect(up.json()).toEqual({ id: ws, quotaBytes: 5_000_000 });
    expect(await quota()).toBe(5_000_000);
    const rec = (await audit(mail, 'workspace.quota')).map((r) =>
      Object.fromEntries(JSON.parse(r.targets!) as [string, string][]),
    );
    expect(rec).toContainEqual({ workspace: ws, from: 'default', to: '5000000' });
    // back to the default
    expect(
      (await call(mail, 'PATCH', `/workspaces/${ws}/quota`, { as: admin, json: { quotaBytes: 'default' } })).json()
        .quotaBytes,
    ).toBeNull();
    expect(
      (await call(mail, 'PATCH', `/workspaces/${ws}/quota`, { as: admin, json: { quotaBytes: null } })).status,
    ).toBe(400);
    expect(await quota()).toBe(1_000_000);
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
    expect((await pick('leonie@example.test')).json().users).toEqual([
      { userId: target.id, username: 'leonie', member: false },
    ]);
    expect((await call(mail, 'GET', `/workspaces/${ws}/member-candidates?q=leonie`, { as: o })).status).toBe(404);
  });
});

describe('password recovery with a mail server', () => {
  it('"forgot password" says a link is on its way by e-mail (the same answer for every account)', async () => {
    for (const username of ['tess', 'nobody-at-all'])
      expect((await call(mail, 'POST', '/auth/password/forgot', { json: { username } })).json()).toEqual({
        status: 'accepted',
        delivery: 'email',
      });
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
});

describe('L4: reads of the directory, exports, token lists and refusals are recorded', () => {
  it('GET /users, token lists, the access-review export, CSRF refusals (aggregated when anonymous)', async () => {
    const admin = await signIn(mail, await enrolUser(mail, 'arthur', 'admin'));
    const count = async (action: string) => (await audit(mail, action)).length;
    const before = {
      list: await count('user.list'),
      tokens: await count('token.list'),
      exp: await count('access.review.export'),
      csrf: await count('auth.csrf'),
    };
    expect((await call(mail, 'GET', '/users', { as: admin })).status).toBe(200);
    expect((await call(mail, 'GET', '/auth/tokens', { as: admin })).status).toBe(200);
    const me = (await call(mail, 'GET', '/auth/me', { as: admin })).json().user.id as string;
    expect((await call(mail, 'GET', `/users/${me}/tokens`, { as: admin })).status).toBe(200);
    expect((await call(mail, 'GET', '/access-reviews/export?format=csv', { as: admin })).status).toBe(200);
    // a cookie request without the CSRF token, and anonymous cross-site sign-ins (a flood from one address)
    expect(
      (
        await call(mail, 'POST', '/workspaces', {
          headers: { cookie: admin.cookie, origin: admin.headers.origin! },
          json: { name: 'x' },
        })
      ).status,
    ).toBe(403);
    for (let i = 0; i < 20; i++) {
      const r = await call(mail, 'POST', '/auth/login', {
        headers: { origin: 'https://evil.example' },
        json: { username: 'arthur', password: 'x' },
      });
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

describe('Z4: nobody reviews their own access, over HTTPS', () => {
  it('an admin confirming their own admin role (session or token) gets 409 SELF_REVIEW, recorded; another admin decides it; items name people', async () => {
    const selfU = await enrolUser(mail, 'self-reviewer', 'admin');
    const self = await signIn(mail, selfU);
    const selfToken = await tokenFor(mail, selfU);
    const other = await signIn(mail, await enrolUser(mail, 'other-reviewer', 'admin'));
    const start = await call(mail, 'POST', '/access-reviews', { as: self });
    expect(start.status, start.body).toBe(201);
    const id = start.json().id as string;
    const items = (await call(mail, 'GET', `/access-reviews/${id}/items`, { as: self })).json().items as {
      id: string;
      kind: string;
      userId: string;
      username: string;
      self: boolean;
    }[];
    const mine = items.find((i) => i.kind === 'role' && i.userId === selfU.id)!;
    expect(mine).toMatchObject({ username: 'self-reviewer', self: true });
    for (const as of [self, selfToken]) {
      const r = await call(mail, 'POST', `/access-reviews/${id}/items/${mine.id}`, {
        as,
        json: { decision: 'confirm' },
      });
      expect(r.status, r.body).toBe(409);
      expect(r.json().error.code).toBe('SELF_REVIEW');
    }
    const refused = (await audit(mail, 'access.review.decision')).filter((r) => r.reason === 'SELF_REVIEW');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(refused.every((r) => r.outcome === 'denied')).toBe(true);
    const ok = await call(mail, 'POST', `/access-reviews/${id}/items/${mine.id}`, {
      as: other,
      json: { decision: 'confirm' },
    });
    expect(ok.status, ok.body).toBe(200);
    const decided = (await call(mail, 'GET', `/access-reviews/${id}/items`, { as: self })).json().items as {
      id: string;
      decidedByName: string | null;
    }[];
    expect(decided.find((i) => i.id === mine.id)!.decidedByName).toBe('other-reviewer');
  });
});
