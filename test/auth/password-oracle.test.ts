import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from './support.js';
import { enrolUser, postFrom, signIn, tokenFor, uniquePassword, type HttpsAnswer } from './helpers.js';

/**
 * The current password asked by a signed-in caller (password change, TOTP set-up) is no oracle:
 * a stolen session or token gets the sign-in treatment (per-user budget, then 429, an alert, the
 * failures counted against the account), and an API token changes a password only with the
 * `password:change` scope, given by name. Over real HTTPS.
 */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv({}, { listen: true });
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

type Answer = HttpsAnswer;
const post = (p: string, body: unknown, headers: Record<string, string>) =>
  postFrom(env, p, body, '127.0.10.1', headers);
const code = (r: Answer) => (JSON.parse(r.body) as { error?: { code: string } }).error?.code;

describe('current-password oracle', () => {
  it('a stolen session guesses the current password 5 times, then 429 (even for the right one) and an alert; password change and TOTP set-up share the budget', async () => {
    const u = await enrolUser(env, 'oracle-olga', 'member');
    const s = await signIn(env, u);
    const change = (current: string) =>
      post('/auth/password', { currentPassword: current, newPassword: uniquePassword() }, s.headers);
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) answers.push(await change(`Oracle-Guess-${i}-x`));
    expect((await post('/auth/mfa/totp', {}, s.headers)).statusCode).toBe(200);
    for (let i = 3; i < 5; i++)
      answers.push(
        await post('/auth/mfa/totp/confirm', { code: '123456', currentPassword: `Oracle-Guess-${i}-x` }, s.headers),
      );
    expect(answers.map((r) => r.statusCode)).toEqual([403, 403, 403, 403, 403]);
    const sixth = await change(u.password);
    expect(sixth.statusCode, sixth.body).toBe(429);
    expect(code(sixth)).toBe('RATE_LIMITED');
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
    const alerts = await env.t.appliance.db.db
      .selectFrom('alerts')
      .selectAll()
      .where('kind', '=', 'auth.bruteforce')
      .execute();
    expect(alerts.some((a) => a.targets?.includes(u.id) && a.targets.includes('current-password'))).toBe(true);
    // the failures count against the account like sign-in failures
    const acct = await env.t.appliance.db.db
      .selectFrom('login_throttle')
      .selectAll()
      .where('key', 'like', 'acct:%')
      .execute();
    expect(acct.some((r) => r.failures >= 5)).toBe(true);
    // the window passes: the right password works again
    env.clock.advance(15 * 60_000 + 1000);
    const newPassword = uniquePassword();
    env.secrets.add(newPassword);
    const ok = await post(
      '/auth/password',
      { currentPassword: u.password, newPassword, endOtherSessions: false },
      s.headers,
    );
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('an API token changes the password only with the password:change scope, given by name', async () => {
    const u = await enrolUser(env, 'oracle-oscar', 'member');
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const loginToken = await tokenFor(env, u);
    const refused = await post(
      '/auth/password',
      { currentPassword: u.password, newPassword: uniquePassword() },
      bearer(loginToken),
    );
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toMatch(/password:change/);
    const s = await signIn(env, u);
    // a default token (no scopes named) does not get it either
    const dflt = await post('/auth/tokens', { name: 'default' }, s.headers);
    expect(dflt.statusCode, dflt.body).toBe(201);
    const dj = JSON.parse(dflt.body) as { token: string; tokenInfo: { scopes: string[] } };
    env.secrets.add(dj.token);
    expect(dj.tokenInfo.scopes).not.toContain('password:change');
    expect(
      (await post('/auth/password', { currentPassword: u.password, newPassword: uniquePassword() }, bearer(dj.token)))
        .statusCode,
    ).toBe(403);
    // named: allowed
    const scoped = await post(
      '/auth/tokens',
      { name: 'rotation script', scopes: ['self', 'password:change'] },
      s.headers,
    );
    expect(scoped.statusCode, scoped.body).toBe(201);
    const sj = JSON.parse(scoped.body) as { token: string };
    env.secrets.add(sj.token);
    const newPassword = uniquePassword();
    env.secrets.add(newPassword);
    // keepTokens: the other tokens stay (a password change revokes them otherwise)
    const ok = await post(
      '/auth/password',
      { currentPassword: u.password, newPassword, endOtherSessions: false, keepTokens: true },
      bearer(sj.token),
    );
    expect(ok.statusCode, ok.body).toBe(200);
    // a token without it cannot mint one that has it
    const minted = await post('/auth/tokens', { name: 'escalate', scopes: ['password:change'] }, bearer(dj.token));
    expect(minted.statusCode).toBe(403);
  });
});
