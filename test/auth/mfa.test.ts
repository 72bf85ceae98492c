import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, totpNow, codeIn, type IdentityEnv } from './support.js';
import { enrolUser, signIn } from './helpers.js';

/** Second factor: TOTP, e-mail and SMS codes, recovery codes, challenges. */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv();
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const login = (username: string, password: string, ip = '192.0.2.20') =>
  env.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, payload: { username, password } });
const answer = (challenge: string, code: string) =>
  env.app.inject({ method: 'POST', url: '/api/v1/auth/login/mfa', payload: { challenge, code } });
const challengeOf = async (username: string, password: string, ip?: string) => {
  const r = await login(username, password, ip);
  expect(r.statusCode, r.body).toBe(200);
  const j = r.json() as { status: string; challenge: string; method: string };
  expect(j.status).toBe('mfa_required');
  env.secrets.add(j.challenge);
  return j;
};

describe('second factor', () => {
  it('M1: a TOTP code works once', async () => {
    const u = await enrolUser(env, 'mathis', 'admin');
    env.clock.advance(60_000);
    const code = totpNow(u.totp!, env.clock);
    const a = await challengeOf('mathis', u.password);
    expect((await answer(a.challenge, code)).statusCode).toBe(200);
    const b = await challengeOf('mathis', u.password);
    const again = await answer(b.challenge, code);
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('INVALID_CODE');
    // an older step (replay of the previous window) is refused too
    expect((await answer(b.challenge, totpNow(u.totp!, env.clock, -1))).statusCode).toBe(401);
    env.clock.advance(30_000);
    expect((await answer(b.challenge, totpNow(u.totp!, env.clock))).statusCode).toBe(200);
  });

  it('M2: the password step alone never yields a session; a challenge belongs to one attempt', async () => {
    const u = await enrolUser(env, 'maelle', 'admin');
    const a = await challengeOf('maelle', u.password);
    expect(Buffer.from(a.challenge, 'base64url').length).toBe(16);
    const first = await login('maelle', u.password);
    expect(first.headers['set-cookie']).toBeUndefined();
    const b = first.json() as { challenge: string };
    env.secrets.add(b.challenge);
    env.clock.advance(30_000);
    const code = totpNow(u.totp!, env.clock);
    expect((await answer(b.challenge, code)).statusCode).toBe(200);
    // challenge B is consumed: it cannot be used again even with a fresh code
    env.clock.advance(30_000);
    const r = await answer(b.challenge, totpNow(u.totp!, env.clock));
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('CHALLENGE_INVALID');
    // challenge A expires after 5 minutes
    env.clock.advance(5 * 60_000);
    expect((await answer(a.challenge, totpNow(u.totp!, env.clock))).json().error.code).toBe('CHALLENGE_INVALID');
    // an e-mailed code is bound to its challenge: the code of attempt A fails for attempt B
    const e = await enrolUser(env, 'melvil', 'member', { mfa: 'email' });
    const ca = await challengeOf('melvil', e.password);
    expect(ca.method).toBe('email');
    const codeA = codeIn((await env.smtp.next('melvil@example.test')).raw);
    env.secrets.add(codeA);
    const cb = await challengeOf('melvil', e.password);
    const codeB = codeIn((await env.smtp.next('melvil@example.test')).raw);
    env.secrets.add(codeB);
    if (codeA !== codeB) expect((await answer(cb.challenge, codeA)).statusCode).toBe(401);
    expect((await answer(cb.challenge, codeB)).statusCode).toBe(200);
  });

  it('M3: 5 wrong codes burn the challenge; recovery codes are hashed and single-use', async () => {
    const u = await enrolUser(env, 'marius', 'admin');
    const c = await challengeOf('marius', u.password);
    for (let i = 0; i < 5; i++) expect((await answer(c.challenge, '000000')).statusCode).toBe(401);
    env.clock.advance(30_000);
    const r = await answer(c.challenge, totpNow(u.totp!, env.clock));
    expect(r.json().error.code).toBe('CHALLENGE_INVALID');
    // parallel wrong codes cannot exceed the budget either
    const c2 = await challengeOf('marius', u.password);
    const burst = await Promise.all(Array.from({ length: 12 }, () => answer(c2.challenge, '111111')));
    expect(burst.filter((x) => x.json().error.code === 'INVALID_CODE').length).toBeLessThanOrEqual(5);
    const row = await env.t.appliance.db.db
      .selectFrom('recovery_codes')
      .selectAll()
      .where('user_id', '=', u.id)
      .execute();
    expect(row).toHaveLength(10);
    expect(JSON.stringify(row)).not.toContain(u.recovery![0]!);
    // those 10 wrong codes (two challenges) locked the factor for 15 minutes (M5, mfa-guessing.test.ts)
    expect((await login('marius', u.password)).json().error.code).toBe('MFA_LOCKED');
    env.clock.advance(15 * 60_000 + 1000);
    // (the three unfinished sign-ins from 192.0.2.20 stay counted: that pair now needs a proof of work, so: another address)
    const c3 = await challengeOf('marius', u.password, '192.0.2.21');
    expect((await answer(c3.challenge, u.recovery![0]!)).statusCode).toBe(200);
    const c4 = await challengeOf('marius', u.password, '192.0.2.21');
    expect((await answer(c4.challenge, u.recovery![0]!)).statusCode).toBe(401);
    expect((await answer(c4.challenge, u.recovery![1]!.toUpperCase())).statusCode).toBe(200);
  });

  it('M4: enforced for every role by default (auth.mfa.requiredRoles); SMS through the gateway', async () => {
    const bo = await enrolUser(env, 'mona', 'backup-operator');
    expect(bo.totp).toBeDefined();
    expect(bo.recovery).toHaveLength(10);
    // members and auditors too: the password alone never signs anyone in
    for (const [name, role] of [
      ['milo', 'member'],
      ['mirabelle', 'auditor'],
    ] as const) {
      const m = await enrolUser(env, name, role);
      expect(m.totp, role).toBeDefined();
      const direct = await login(name, m.password);
      expect(direct.json().status, role).toBe('mfa_required');
      expect(direct.headers['set-cookie']).toBeUndefined();
      env.secrets.add(direct.json().challenge);
    }
    // SMS: the code goes to the customer's gateway with the configured auth header and template
    const s = await enrolUser(env, 'mehdi', 'member', { mfa: 'sms', phone: '+33 6 12 34 56 78' });
    const cs = await challengeOf('mehdi', s.password);
    expect(cs.method).toBe('sms');
    const got = env.sms.received.at(-1)!;
    expect(got.headers.authorization).toBe('Bearer sms-gateway-secret');
    const body = JSON.parse(got.body) as { to: string; text: string };
    expect(body.to).toBe('+33612345678');
    const smsCode = codeIn(body.text);
    env.secrets.add(smsCode);
    expect((await answer(cs.challenge, smsCode)).statusCode).toBe(200);
    // TOTP later, from a session: the pending secret does not replace the current factor until
    // confirmed, and confirming needs the current password (a stolen session cannot swap factors)
    const mila = await enrolUser(env, 'mila', 'member');
    const sm = await signIn(env, mila);
    const other = await signIn(env, mila);
    const prov = await env.app.inject({ method: 'POST', url: '/api/v1/auth/mfa/totp', headers: sm.headers });
    expect(prov.statusCode, prov.body).toBe(200);
    const secret = prov.json().secret as string;
    env.secrets.add(secret);
    expect(prov.json().qrSvg).toMatch(/^<svg/);
    const fresh = () => totpNow(secret, env.clock);
    const noPw = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      headers: sm.headers,
      payload: { code: fresh() },
    });
    expect(noPw.statusCode).toBe(400);
    const badPw = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      headers: sm.headers,
      payload: { code: fresh(), currentPassword: 'Not-The-Password-1' },
    });
    expect(badPw.statusCode).toBe(403);
    env.clock.advance(30_000);
    const ok = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      headers: sm.headers,
      payload: { code: fresh(), currentPassword: mila.password },
    });
    expect(ok.statusCode, ok.body).toBe(200);
    for (const c of ok.json().recoveryCodes as string[]) env.secrets.add(c);
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: sm.cookie } })).statusCode,
    ).toBe(200);
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: other.cookie } })).statusCode,
    ).toBe(401);
  });
});
