import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, cookieOf, linkIn, type IdentityEnv } from './support.js';
import { enrolUser, finishLogin, signIn, tokenFor, uniquePassword } from './helpers.js';

/** Sessions (S1–S5), passwords at rest and in transit (P6, P7), tokens (Z1, Z3), audit fields (L1). */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv();
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});
const me = (cookie: string) => env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie } });

describe('sessions', () => {
  it('S1: __Host- cookie, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain', async () => {
    const u = await enrolUser(env, 'sacha', 'member');
    const r = await finishLogin(
      env,
      u,
      await env.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { username: 'sacha', password: u.password },
      }),
    );
    const c = String(r.headers['set-cookie']);
    env.secrets.add(cookieOf(c).split('=')[1]!).add(r.json().csrfToken);
    expect(c).toMatch(/^__Host-coffre=[A-Za-z0-9_-]{43};/);
    const attrs = c
      .split(';')
      .slice(1)
      .map((s) => s.trim().toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['secure', 'httponly', 'samesite=strict', 'path=/']));
    expect(attrs.some((a) => a.startsWith('domain'))).toBe(false);
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('S2: a new session id at every sign-in; a cookie sent before sign-in is worthless', async () => {
    const u = await enrolUser(env, 'salome', 'member');
    const planted = '__Host-coffre=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const r = await finishLogin(
      env,
      u,
      await env.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { cookie: planted },
        payload: { username: 'salome', password: u.password },
      }),
    );
    const fresh = cookieOf(r.headers['set-cookie']);
    env.secrets.add(fresh.split('=')[1]!).add(r.json().csrfToken);
    expect(fresh).not.toBe(planted);
    expect((await me(planted)).statusCode).toBe(401);
    const again = await signIn(env, u);
    expect(again.cookie).not.toBe(fresh);
    expect((await me(fresh)).statusCode).toBe(200);
  });

  it('S3: idle timeout 30 min and absolute timeout 12 h, enforced server-side', async () => {
    const u = await enrolUser(env, 'samuel', 'member');
    const s = await signIn(env, u);
    env.clock.advance(29 * 60_000);
    expect((await me(s.cookie)).statusCode).toBe(200);
    env.clock.advance(30 * 60_000 + 1000);
    expect((await me(s.cookie)).statusCode).toBe(401);
    const s2 = await signIn(env, u);
    // active every 25 minutes: the idle deadline keeps moving, the absolute one does not
    for (let i = 0; i < 28; i++) {
      env.clock.advance(25 * 60_000);
      expect((await me(s2.cookie)).statusCode).toBe(200);
    }
    env.clock.advance(25 * 60_000); // 12 h 05 min after sign-in
    expect((await me(s2.cookie)).statusCode).toBe(401);
    const ended = await env.t.appliance.db.db
      .selectFrom('sessions')
      .select(['end_reason'])
      .where('user_id', '=', u.id)
      .execute();
    expect(ended.map((e) => e.end_reason).sort()).toEqual(['expired', 'idle']);
    expect(
      (
        await env.t.appliance.db.db
          .selectFrom('audit_events')
          .selectAll()
          .where('action', '=', 'session.expire')
          .execute()
      ).length,
    ).toBe(2);
  });

  it('S4: logout, disabling, a password change and an admin end sessions server-side', async () => {
    const u = await enrolUser(env, 'sophie', 'member');
    const admin = await enrolUser(env, 'serge', 'admin');
    const sa = await signIn(env, admin);
    // logout
    const a = await signIn(env, u);
    expect((await env.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: a.headers })).statusCode).toBe(
      200,
    );
    expect((await me(a.cookie)).statusCode).toBe(401);
    // password change ends the other sessions (P7) and needs the current password
    const b = await signIn(env, u);
    const c = await signIn(env, u);
    const np = uniquePassword();
    env.secrets.add(np);
    const wrong = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password',
      headers: b.headers,
      payload: { currentPassword: 'not-it-at-all', newPassword: np },
    });
    expect(wrong.statusCode).toBe(403);
    const ch = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password',
      headers: b.headers,
      payload: { currentPassword: u.password, newPassword: np },
    });
    expect(ch.statusCode, ch.body).toBe(200);
    expect((await me(b.cookie)).statusCode).toBe(200);
    expect((await me(c.cookie)).statusCode).toBe(401);
    const notice = await env.smtp.next('sophie@example.test');
    expect(notice.raw).toMatch(/password of your Coffre account was changed/);
    expect(notice.raw).not.toContain(np);
    u.password = np;
    // admin "end sessions"
    const d = await signIn(env, u);
    const end = await env.app.inject({
      method: 'POST',
      url: `/api/v1/users/${u.id}/sessions/end`,
      headers: sa.headers,
    });
    expect(end.json().ended).toBe(2);
    expect((await me(d.cookie)).statusCode).toBe(401);
    // disabling ends sessions and tokens
    const e = await signIn(env, u);
    const tok = await tokenFor(env, u);
    expect(
      (await env.app.inject({ method: 'POST', url: `/api/v1/users/${u.id}/disable`, headers: sa.headers })).statusCode,
    ).toBe(200);
    expect((await me(e.cookie)).statusCode).toBe(401);
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${tok}` } }))
        .statusCode,
    ).toBe(401);
    // own sessions can be listed and ended one by one
    const f1 = await signIn(env, admin);
    const list = await env.app.inject({ method: 'GET', url: '/api/v1/auth/sessions', headers: { cookie: f1.cookie } });
    const sessions = list.json().sessions as { id: string; current: boolean }[];
    expect(sessions.length).toBe(2);
    const other = sessions.find((s) => !s.current)!;
    expect(
      (await env.app.inject({ method: 'DELETE', url: `/api/v1/auth/sessions/${other.id}`, headers: f1.headers }))
        .statusCode,
    ).toBe(200);
    expect((await me(sa.cookie)).statusCode).toBe(401);
  });

  it('S5: sign-in from another site is refused (login CSRF); scripts without Origin are not affected', async () => {
    const u = await enrolUser(env, 'selma', 'member');
    const cross = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { origin: 'https://evil.example' },
      payload: { username: 'selma', password: u.password },
    });
    expect(cross.statusCode).toBe(403);
    expect(cross.headers['set-cookie']).toBeUndefined();
    const site = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'sec-fetch-site': 'cross-site' },
      payload: { username: 'selma', password: u.password },
    });
    expect(site.statusCode).toBe(403);
    const same = await finishLogin(
      env,
      u,
      await env.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { origin: new URL(env.publicUrl).origin, 'sec-fetch-site': 'same-origin' },
        payload: { username: 'selma', password: u.password },
      }),
    );
    expect(same.statusCode).toBe(200);
    env.secrets.add(same.json().csrfToken).add(cookieOf(same.headers['set-cookie']).split('=')[1]!);
  });

  it('S5: cookie-authenticated state changes need the CSRF token and a same-origin request', async () => {
    const u = await enrolUser(env, 'simon', 'member');
    const s = await signIn(env, u);
    const post = (headers: Record<string, string>) =>
      env.app.inject({ method: 'POST', url: '/api/v1/workspaces', headers, payload: { name: 'Projet' } });
    expect((await post({ cookie: s.cookie, origin: s.headers.origin! })).statusCode).toBe(403);
    expect((await post({ cookie: s.cookie, 'x-csrf-token': 'forged', origin: s.headers.origin! })).statusCode).toBe(
      403,
    );
    expect((await post({ cookie: s.cookie, 'x-csrf-token': s.csrf, origin: 'https://evil.example' })).statusCode).toBe(
      403,
    );
    expect((await post({ cookie: s.cookie, 'x-csrf-token': s.csrf })).statusCode).toBe(403);
    expect((await post({ cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'cross-site' })).statusCode).toBe(
      403,
    );
    expect((await post({ cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(
      201,
    );
    expect((await post(s.headers)).statusCode).toBe(201);
    // another session's CSRF token does not fit
    const t = await signIn(env, u);
    expect((await post({ ...s.headers, 'x-csrf-token': t.csrf })).statusCode).toBe(403);
    // a bearer token needs no CSRF token (not sent by browsers on their own)
    const tok = await tokenFor(env, u);
    expect((await post({ authorization: `Bearer ${tok}` })).statusCode).toBe(201);
  });
});

describe('passwords in use', () => {
  it('P6: no password in mail, logs, URLs or audit; an admin cannot set a password', async () => {
    const admin = await enrolUser(env, 'patrice', 'admin');
    const sa = await signIn(env, admin);
    const inv = await env.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: sa.headers,
      payload: { username: 'pauline', email: 'pauline@example.test', role: 'member', password: 'Admin-Chosen-Pass1' },
    });
    expect(inv.statusCode).toBe(400); // no such field: admins never choose passwords
    const ok = await env.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: sa.headers,
      payload: { username: 'pauline', email: 'pauline@example.test', role: 'member' },
    });
    expect(ok.statusCode, ok.body).toBe(201);
    // mailed to the user: the admin never sees the link (they could choose the password with it)
    expect(ok.json().mailed).toBe(true);
    expect(ok.json().enrolUrl).toBeUndefined();
    const invitation = await env.smtp.next('pauline@example.test');
    env.secrets.add(linkIn(invitation.raw).split('/').pop()!);
    expect(invitation.raw).not.toMatch(/password:/i);
    const audit = JSON.stringify(await env.t.appliance.db.db.selectFrom('audit_events').selectAll().execute());
    for (const s of env.secrets) expect(audit.includes(s)).toBe(false);
    const users = JSON.stringify(await env.t.appliance.db.db.selectFrom('users').selectAll().execute());
    expect(users).not.toContain('@example.test'); // e-mail encrypted at rest
    expect(users).not.toContain(admin.password);
  });
});

describe('tokens and authentication', () => {
  it('Z1: anonymous calls to non-public routes get 401', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/auth/me'],
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/workspaces'],
      ['GET', '/api/v1/auth/tokens'],
    ] as const) {
      const r = await env.app.inject({ method, url, payload: method === 'POST' ? {} : undefined });
      expect(r.statusCode, url).toBe(401);
    }
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: 'Bearer cft_forged' } }))
        .statusCode,
    ).toBe(401);
  });

  it('Z3: API tokens are per user, scoped, expiring, stored hashed, revocable', async () => {
    const u = await enrolUser(env, 'zoe', 'member');
    const full = await tokenFor(env, u);
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const mk = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/tokens',
      headers: bearer(full),
      payload: { name: 'read-only', scopes: ['self'], ttlDays: 1 },
    });
    expect(mk.statusCode, mk.body).toBe(201);
    const scoped = mk.json().token as string;
    env.secrets.add(scoped);
    // scope: `self` does not include workspace:create
    expect(
      (
        await env.app.inject({
          method: 'POST',
          url: '/api/v1/workspaces',
          headers: bearer(scoped),
          payload: { name: 'x' },
        })
      ).statusCode,
    ).toBe(403);
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(scoped) })).statusCode).toBe(
      200,
    );
    // no more than the creator holds
    const over = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/tokens',
      headers: bearer(full),
      payload: { name: 'x', scopes: ['users:manage'] },
    });
    expect(over.statusCode).toBe(403);
    // stored hashed
    const rows = JSON.stringify(await env.t.appliance.db.db.selectFrom('api_tokens').selectAll().execute());
    expect(rows).not.toContain(scoped.slice(4));
    // expiry
    env.clock.advance(86_400_000 + 1000);
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(scoped) })).statusCode).toBe(
      401,
    );
    // revocation
    const id = (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(full) })).json()
      .tokenId as string;
    expect(
      (await env.app.inject({ method: 'DELETE', url: `/api/v1/auth/tokens/${id}`, headers: bearer(full) })).statusCode,
    ).toBe(200);
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(full) })).statusCode).toBe(
      401,
    );
  });

  it('L1: audit records carry UTC time, actor, source address, user agent and request id', async () => {
    const u = await enrolUser(env, 'lucas', 'member');
    const r = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      remoteAddress: '192.0.2.77',
      headers: { 'user-agent': 'curl/8.0' },
      payload: { username: 'lucas', password: 'Wrong-Password-1x' },
    });
    expect(r.statusCode).toBe(401);
    const reqId = r.json().error.requestId as string;
    const denied = await signIn(env, u);
    const forbidden = await env.app.inject({
      method: 'GET',
      url: '/api/v1/users',
      remoteAddress: '192.0.2.78',
      headers: {
        cookie: denied.cookie,
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
      },
    });
    expect(forbidden.statusCode).toBe(403);
    const rows = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(20)
      .execute();
    const fail = rows.find((e) => e.action === 'auth.login' && e.request_id === reqId);
    expect(fail).toBeDefined();
    expect(fail!.source_ip).toBe('192.0.2.77');
    expect(fail!.user_agent).toBe('curl/8.0');
    expect(fail!.outcome).toBe('failure');
    expect(new Date(Number(fail!.at)).toISOString()).toMatch(/Z$/);
    const deny = rows.find((e) => e.action === 'access.denied');
    expect(deny?.actor).toBe(`user:${u.id}`);
    expect(deny?.source_ip).toBe('192.0.2.78');
    for (const a of [
      'user.invite',
      'user.enrol',
      'auth.login',
      'auth.login.password',
      'session.kill',
      'auth.logout',
      'auth.password.change',
      'user.disable',
      'token.create',
      'token.revoke',
    ]) {
      const n = await env.t.appliance.db.db.selectFrom('audit_events').select('seq').where('action', '=', a).execute();
      expect(n.length, a).toBeGreaterThan(0);
    }
  });
});
