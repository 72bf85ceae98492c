import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, totpNow, type IdentityEnv } from './support.js';
import { enrolUser } from './helpers.js';
import { audit } from './attack.js';

/**
 * An upgraded install with no mail server: the second factor is now required for every role, and
 * members enrolled before that have none (and no mail server can send them a code). Sign-in then
 * asks them to add an authenticator right after the password, bound to that one challenge; the
 * password alone gives nothing. Over real HTTPS (docs/identity.md).
 */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv({ COFFRE_CFG_mail: '{}' }, { listen: true });
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

type Res = { statusCode: number; body: string; headers: Record<string, unknown> };
const post = (path: string, body: unknown): Promise<Res> =>
  env.https('POST', `/api/v1${path}`, {
    from: '127.0.7.1',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const json = (r: Res) =>
  JSON.parse(r.body) as {
    status?: string;
    method?: string;
    challenge?: string;
    csrfToken?: string;
    totp?: { secret: string; otpauthUrl: string };
    error?: { code: string };
  };

describe('no mail server, no second factor yet: enrol an authenticator at sign-in, never 503', () => {
  it('the password step hands a bound TOTP enrolment, nothing else; the right code completes the sign-in and the authenticator stays', async () => {
    const u = await enrolUser(env, 'marius', 'member');
    const db = env.t.appliance.db.db;
    // as enrolled before the second factor became the default for members
    await db
      .updateTable('users')
      .set({ mfa_method: null, totp_secret_enc: null, totp_pending_enc: null, totp_confirmed: 0 })
      .where('id', '=', u.id)
      .execute();
    const sessionsBefore = (await db.selectFrom('sessions').select('id').where('user_id', '=', u.id).execute()).length;

    const first = await post('/auth/login', { username: 'marius', password: u.password });
    expect(first.statusCode, first.body).toBe(200);
    const j = json(first);
    expect(j).toMatchObject({ status: 'mfa_required', method: 'totp-enrol' });
    expect(j.totp?.otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    env.secrets.add(j.totp!.secret);
    env.secrets.add(j.challenge!);
    expect(first.headers['set-cookie']).toBeUndefined();
    expect((await db.selectFrom('sessions').select('id').where('user_id', '=', u.id).execute()).length).toBe(
      sessionsBefore,
    );
    expect(
      (await db.selectFrom('users').select('mfa_method').where('id', '=', u.id).executeTakeFirstOrThrow()).mfa_method,
    ).toBeNull();
    // the password alone cannot mint a token either
    const tok = await post('/auth/login', { username: 'marius', password: u.password, issue: 'token' });
    expect(json(tok).status).toBe('mfa_required');
    expect(tok.body).not.toMatch(/cft_/);
    // the first enrolment's challenge is void now (a new secret was handed out): use the latest
    const latest = json(tok);
    env.secrets.add(latest.totp!.secret);
    env.secrets.add(latest.challenge!);
    // a wrong code: refused, nothing enrolled
    const wrong = await post('/auth/login/mfa', { challenge: latest.challenge, code: '000000' });
    expect(wrong.statusCode).toBe(401);
    expect(
      (await db.selectFrom('users').select('mfa_method').where('id', '=', u.id).executeTakeFirstOrThrow()).mfa_method,
    ).toBeNull();
    // a code from the first (replaced) secret does not work
    env.clock.advance(30_000);
    expect(
      (await post('/auth/login/mfa', { challenge: latest.challenge, code: totpNow(j.totp!.secret, env.clock) }))
        .statusCode,
    ).toBe(401);
    // the code of the authenticator just added: in, with a token
    const ok = await post('/auth/login/mfa', {
      challenge: latest.challenge,
      code: totpNow(latest.totp!.secret, env.clock),
    });
    expect(ok.statusCode, ok.body).toBe(200);
    const token = (JSON.parse(ok.body) as { token: string }).token;
    env.secrets.add(token);
    expect(token).toMatch(/^cft_/);
    expect(
      await db
        .selectFrom('users')
        .select(['mfa_method', 'totp_pending_enc'])
        .where('id', '=', u.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ mfa_method: 'totp', totp_pending_enc: null });
    expect(
      (await audit(env, 'auth.mfa.totp.enrol')).some((r) => r.reason === 'AT_SIGN_IN' && r.targets?.includes(u.id)),
    ).toBe(true);
    // next time: the ordinary second factor with that authenticator, no new enrolment
    const again = await post('/auth/login', { username: 'marius', password: u.password });
    expect(json(again)).toMatchObject({ status: 'mfa_required', method: 'totp' });
    expect(json(again).totp).toBeUndefined();
    env.secrets.add(json(again).challenge!);
    env.clock.advance(30_000);
    const s = await post('/auth/login/mfa', {
      challenge: json(again).challenge,
      code: totpNow(latest.totp!.secret, env.clock),
    });
    expect(s.statusCode, s.body).toBe(200);
    env.secrets.add(json(s).csrfToken!);
    const cookie = (s.headers['set-cookie'] as string[]).find((c) => c.startsWith('__Host-coffre='))!;
    env.secrets.add(cookie.split(';')[0]!.split('=')[1]!);
  });
});
