import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, totpNow, type IdentityEnv } from './support.js';
import { enrolUser, postFrom, type HttpsAnswer } from './helpers.js';
import { solveProof } from '../../src/auth/proof.js';

/**
 * Second-factor guessing by someone who holds the password, over real HTTPS:
 * wrong codes are counted per user across challenges, then the factor locks, the user is told
 * (e-mail and a notice at their next sign-in) and an alert is raised; codes sent by e-mail or SMS
 * are limited per user and per destination; the password step stays counted until the second
 * factor succeeds.
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
const post = (p: string, body: unknown, from: string) => postFrom(env, p, body, from);
const json = (r: Answer) =>
  JSON.parse(r.body) as {
    status?: string;
    challenge?: string;
    csrfToken?: string;
    notices?: { kind: string }[];
    error?: { code: string; details?: { proof?: { challenge: string; bits: number } } };
  };
const challenge = async (username: string, password: string, from: string): Promise<string> => {
  const r = await post('/auth/login', { username, password }, from);
  expect(r.statusCode, r.body).toBe(200);
  const c = json(r).challenge!;
  env.secrets.add(c);
  return c;
};
const alerts = (kind: string) =>
  env.t.appliance.db.db.selectFrom('alerts').selectAll().where('kind', '=', kind).execute();
/** a 6-digit code that is not the current TOTP code */
const wrongCode = (secret: string, i: number) => {
  const right = new Set([-1, 0, 1].map((o) => totpNow(secret, env.clock, o)));
  for (let n = 100_000 + i * 7919; ; n++) if (!right.has(String(n))) return String(n);
};

describe('second-factor guessing', () => {
  it('M5: 10 wrong codes across challenges lock the factor (even the right code is refused), mail the user, alert, and show a notice at the next sign-in', async () => {
    const u = await enrolUser(env, 'guessed-admin', 'admin');
    const answers: Answer[] = [];
    for (let c = 0; c < 2; c++) {
      const ch = await challenge(u.username, u.password, `127.0.5.${c + 1}`);
      for (let i = 0; i < 5; i++)
        answers.push(
          await post('/auth/login/mfa', { challenge: ch, code: wrongCode(u.totp!, c * 5 + i) }, `127.0.5.${c + 1}`),
        );
    }
    expect(answers.every((r) => r.statusCode === 401)).toBe(true);
    // an 11th try on a new challenge: locked, whatever the code (guessing stops)
    const locked = await post('/auth/login', { username: u.username, password: u.password }, '127.0.5.3');
    expect(locked.statusCode, locked.body).toBe(429);
    expect(json(locked).error?.code).toBe('MFA_LOCKED');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await alerts('auth.mfa.locked')).some((a) => a.targets?.includes(u.id))).toBe(true);
    const mail = await env.smtp.next(u.email);
    expect(mail.raw).toMatch(/second factor was locked/);
    const audit = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'auth.mfa.lock')
      .execute();
    expect(audit.some((a) => a.targets?.includes(u.id))).toBe(true);

    // once the lock is over, the user signs in and is told
    env.clock.advance(16 * 60_000);
    const ch = await challenge(u.username, u.password, '127.0.5.9');
    env.clock.advance(30_000);
    const ok = await post('/auth/login/mfa', { challenge: ch, code: totpNow(u.totp!, env.clock) }, '127.0.5.9');
    expect(ok.statusCode, ok.body).toBe(200);
    env.secrets.add(json(ok).csrfToken!);
    expect(json(ok).notices?.map((n) => n.kind)).toEqual(['mfa.locked']);
    // shown once
    env.clock.advance(30_000);
    const ch2 = await challenge(u.username, u.password, '127.0.5.9');
    const again = await post('/auth/login/mfa', { challenge: ch2, code: totpNow(u.totp!, env.clock) }, '127.0.5.9');
    expect(again.statusCode).toBe(200);
    env.secrets.add(json(again).csrfToken!);
    expect(json(again).notices).toBeUndefined();
  });

  it('M5: during the lock, a challenge opened before it takes no code at all', async () => {
    const u = await enrolUser(env, 'guessed-op', 'backup-operator');
    const open = await challenge(u.username, u.password, '127.0.6.1');
    for (let c = 0; c < 2; c++) {
      const ch = await challenge(u.username, u.password, '127.0.6.2');
      for (let i = 0; i < 5; i++)
        await post('/auth/login/mfa', { challenge: ch, code: wrongCode(u.totp!, i) }, '127.0.6.2');
    }
    env.clock.advance(30_000);
    const r = await post('/auth/login/mfa', { challenge: open, code: totpNow(u.totp!, env.clock) }, '127.0.6.1');
    expect(r.statusCode).toBe(429);
    expect(json(r).error?.code).toBe('MFA_LOCKED');
  });

  it('M5: the password step stays counted until the second factor succeeds', async () => {
    const u = await enrolUser(env, 'half-signed', 'admin');
    const ip = '127.0.7.1';
    for (let i = 0; i < 3; i++) await challenge(u.username, u.password, ip); // right password, second factor abandoned
    const fourth = await post('/auth/login', { username: u.username, password: u.password }, ip);
    expect(json(fourth).error?.code).toBe('PROOF_REQUIRED');
    const p = json(fourth).error!.details!.proof!;
    const withProof = await post(
      '/auth/login',
      {
        username: u.username,
        password: u.password,
        proof: { challenge: p.challenge, nonce: solveProof(p.challenge, p.bits) },
      },
      ip,
    );
    expect(withProof.statusCode, withProof.body).toBe(200);
    env.secrets.add(json(withProof).challenge!);
    env.clock.advance(30_000);
    const done = await post(
      '/auth/login/mfa',
      { challenge: json(withProof).challenge, code: totpNow(u.totp!, env.clock) },
      ip,
    );
    expect(done.statusCode, done.body).toBe(200);
    env.secrets.add(json(done).csrfToken!);
    // the second factor succeeded: that address's count is released
    expect((await post('/auth/login', { username: u.username, password: u.password }, ip)).statusCode).toBe(200);
  });

  it('M5: e-mail and SMS codes are limited per user and per destination (no SMS pumping)', async () => {
    const a = await enrolUser(env, 'sms-anna', 'member', { mfa: 'sms', phone: '+33612345678' });
    const b = await enrolUser(env, 'sms-boris', 'member', { mfa: 'sms', phone: '+33612345678' });
    const before = env.sms.received.length;
    for (let i = 0; i < 5; i++) await challenge(a.username, a.password, `127.0.8.${i + 1}`);
    expect(env.sms.received.length - before).toBe(5);
    const sixth = await post('/auth/login', { username: a.username, password: a.password }, '127.0.8.9');
    expect(sixth.statusCode).toBe(429);
    expect(json(sixth).error?.code).toBe('CODE_RATE_LIMITED');
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
    // another account with the same phone number: that destination is used up too
    const other = await post('/auth/login', { username: b.username, password: b.password }, '127.0.8.10');
    expect(json(other).error?.code).toBe('CODE_RATE_LIMITED');
    expect(env.sms.received.length - before).toBe(5);
    // e-mail codes: the same per-user budget
    const e = await enrolUser(env, 'mail-emma', 'member', { mfa: 'email' });
    for (let i = 0; i < 5; i++) await challenge(e.username, e.password, `127.0.9.${i + 1}`);
    expect(
      json(await post('/auth/login', { username: e.username, password: e.password }, '127.0.9.9')).error?.code,
    ).toBe('CODE_RATE_LIMITED');
    // the window passes: codes again
    env.clock.advance(15 * 60_000 + 1000);
    expect((await post('/auth/login', { username: e.username, password: e.password }, '127.0.9.10')).statusCode).toBe(
      200,
    );
  });
});
