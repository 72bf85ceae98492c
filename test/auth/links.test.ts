import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, type IdentityEnv } from './support.js';
import { enrolUser, signIn, uniquePassword } from './helpers.js';
import { sha256 } from '../../src/auth/secrets.js';

/** Enrolment and reset links, with a real SMTP server and a fake clock. */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv();
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const db = () => env.t.appliance.db.db;
const invite = async (username: string, role = 'member') => {
  const r = await env.t.appliance.identity.accounts.invite(
    { username, email: `${username}@example.test`, role },
    'local:test',
    {},
    true,
  );
  env.secrets.add(r.enrolUrl.split('/').pop()!);
  return r;
};
const enrol = (token: string, password: string) =>
  env.app.inject({ method: 'POST', url: '/api/v1/auth/enrol', payload: { token, password } });
const forgot = (body: Record<string, string>, ip = '203.0.113.9') =>
  env.app.inject({ method: 'POST', url: '/api/v1/auth/password/forgot', remoteAddress: ip, payload: body });

describe('enrolment and reset links', () => {
  it('R1: 256-bit CSPRNG token, only its SHA-256 stored; a newer link voids the older one', async () => {
    const a = await invite('rachel');
    const token = a.enrolUrl.split('/').pop()!;
    expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
    const rows = await db().selectFrom('one_time_links').selectAll().where('user_id', '=', a.user.id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(sha256(token));
    expect(JSON.stringify(rows)).not.toContain(token);
    // the invitation went out by mail, with the same link
    const mail = await env.smtp.next('rachel@example.test');
    expect(linkIn(mail.raw)).toBe(a.enrolUrl);
    const b = await env.t.appliance.identity.accounts.reinvite(a.user.id, 'local:test', {});
    env.secrets.add(b.enrolUrl.split('/').pop()!);
    expect((await enrol(a.enrolUrl, uniquePassword())).statusCode).toBe(410);
    expect((await enrol(b.enrolUrl, uniquePassword())).statusCode).toBe(200);
  });

  it('R2: a link expires 24 h after issue', async () => {
    const a = await invite('roland');
    env.clock.advance(24 * 3_600_000 - 1000);
    const b = await invite('rosalie');
    env.clock.advance(2000);
    const r = await enrol(a.enrolUrl, uniquePassword());
    expect(r.statusCode).toBe(410);
    expect(r.json().error.code).toBe('LINK_INVALID');
    expect((await enrol(b.enrolUrl, uniquePassword())).statusCode).toBe(200);
  });

  it('R3: void after first use; two parallel submissions: exactly one succeeds', async () => {
    const a = await invite('regis');
    const p1 = uniquePassword();
    const p2 = uniquePassword();
    env.secrets.add(p1).add(p2);
    const [x, y] = await Promise.all([enrol(a.enrolUrl, p1), enrol(a.enrolUrl, p2)]);
    expect([x.statusCode, y.statusCode].sort()).toEqual([200, 410]);
    expect((await enrol(a.enrolUrl, uniquePassword())).statusCode).toBe(410);
    // a weak password does not burn the link
    const b = await invite('renee');
    expect((await enrol(b.enrolUrl, 'Password1!')).statusCode).toBe(422);
    expect((await enrol(b.enrolUrl, uniquePassword())).statusCode).toBe(200);
  });

  it('R4: forgot-password answers the same whether the account exists; per-account and per-address limits', async () => {
    const u = await enrolUser(env, 'rufus', 'member');
    const known = await forgot({ username: 'rufus' });
    const unknown = await forgot({ username: 'nobody-at-all' });
    const byMail = await forgot({ email: 'rufus@example.test' });
    for (const r of [known, unknown, byMail]) {
      expect(r.statusCode).toBe(202);
      expect(r.body).toBe('{"status":"accepted","delivery":"email"}');
    }
    // timing: the work happens after the answer, so both answer in the same small time
    const t = async (name: string) => {
      const t0 = performance.now();
      await forgot({ username: name }, '203.0.113.10');
      return performance.now() - t0;
    };
    const tk: number[] = [];
    const tu: number[] = [];
    for (let i = 0; i < 5; i++) {
      tk.push(await t('rufus'));
      tu.push(await t('nobody-at-all'));
    }
    const med = (a: number[]) => a.sort((p, q) => p - q)[2]!;
    // no argon2, no SMTP, no link before the answer: both are small and alike
    expect(Math.abs(med(tk) - med(tu))).toBeLessThan(40);
    // the reset mail arrives (first request), the per-account budget (3/h) drops the rest silently
    const m = await env.smtp.next('rufus@example.test');
    const link = linkIn(m.raw);
    env.secrets.add(link.split('/').pop()!);
    expect(m.raw).not.toContain(u.password);
    await new Promise((r) => setTimeout(r, 300));
    const resets = env.smtp.messages.filter(
      (x) => x.to === 'rufus@example.test' && /Reset your Coffre password/.test(x.raw),
    );
    expect(resets.length).toBe(3); // 1 + 5 + 5 requests for rufus, at most 3 mails per hour
    // per address: 20 per hour, then 429 with Retry-After, for known and unknown names alike
    let last = await forgot({ username: 'x' }, '203.0.113.50');
    for (let i = 0; i < 20; i++) last = await forgot({ username: `n${i}` }, '203.0.113.50');
    expect(last.statusCode).toBe(429);
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('R5: a reset ends sessions, never bypasses the second factor; links use the public URL, not Host; no-referrer', async () => {
    const a = await enrolUser(env, 'romane', 'admin');
    const s = await signIn(env, a);
    env.clock.advance(3_600_000);
    const r = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password/forgot',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
      payload: { username: 'romane' },
    });
    expect(r.statusCode).toBe(202);
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    const m = await env.smtp.next('romane@example.test');
    const link = linkIn(m.raw);
    env.secrets.add(link.split('/').pop()!);
    expect(link.startsWith(`${env.publicUrl}/#/reset/`)).toBe(true);
    expect(m.raw).not.toContain('evil.example');
    const np = uniquePassword();
    env.secrets.add(np);
    const done = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password/reset',
      payload: { token: link, password: np },
    });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.headers['set-cookie']).toBeUndefined();
    expect(done.headers['referrer-policy']).toBe('no-referrer');
    // the old session is gone
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: s.cookie } })).statusCode,
    ).toBe(401);
    // the new password alone does not sign in: the TOTP step still applies
    const li = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'romane', password: np },
    });
    expect(li.statusCode).toBe(200);
    expect(li.json().status).toBe('mfa_required');
    expect(li.headers['set-cookie']).toBeUndefined();
    // the reset link worked once; the user was told by mail
    expect(
      (
        await env.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password/reset',
          payload: { token: link, password: uniquePassword() },
        })
      ).statusCode,
    ).toBe(410);
    const notice = await env.smtp.next('romane@example.test');
    expect(notice.raw).toMatch(/password was changed/);
    const events = await db().selectFrom('audit_events').selectAll().where('action', 'like', 'auth.reset%').execute();
    expect(events.length).toBeGreaterThan(0);
    expect(JSON.stringify(events)).not.toContain(link.split('/').pop()!);
  });
});
