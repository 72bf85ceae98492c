import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, type IdentityEnv } from './support.js';
import { enrolUser, type Enrolled } from './helpers.js';
import { solveProof } from '../../src/auth/proof.js';

/**
 * Brute force without lockout (and one shared address): counters live in the
 * database; the clock is fake. The attacks run over real HTTPS from many loopback addresses
 * (127.0.x.y stand in for a botnet); the finer checks use inject with a remote address.
 */
let env: IdentityEnv;
let victim: Enrolled;
beforeAll(async () => {
  // this suite is about the password step: members sign in with it alone here (second factor relaxed for them)
  env = await openIdentityEnv(
    {
      COFFRE_CFG_http__trustedProxies: '["192.0.2.254"]',
      COFFRE_CFG_auth__mfa__requiredRoles: '["admin","backup-operator","auditor"]',
    },
    { listen: true },
  );
  victim = await enrolUser(env, 'victor', 'member');
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

type Answer = { statusCode: number; body: string; headers: Record<string, unknown> };
const login = (
  username: string,
  password: string,
  ip: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Answer> =>
  env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    remoteAddress: ip,
    headers,
    payload: { username, password, ...extra },
  });
const overHttps = (
  username: string,
  password: string,
  from: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Answer> =>
  env.https('POST', '/api/v1/auth/login', {
    from,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ username, password, ...extra }),
  });
const json = (r: Answer) =>
  JSON.parse(r.body) as {
    status?: string;
    csrfToken?: string;
    error?: { code: string; message: string; details?: { proof?: { challenge: string; bits: number } } };
  };
const shape = (r: Answer) => ({ status: r.statusCode, body: r.body.replace(/"requestId":"[^"]+"/, '') });
/** a proof demand without its (random) challenge */
const demand = (r: Answer) => ({
  status: r.statusCode,
  code: json(r).error?.code,
  message: json(r).error?.message,
  bits: json(r).error?.details?.proof?.bits,
});
const audits = (reason: string) =>
  env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('reason', '=', reason).execute();
const alerts = (kind: string) =>
  env.t.appliance.db.db.selectFrom('alerts').selectAll().where('kind', '=', kind).execute();
const keep = (r: Answer) => {
  const j = json(r);
  if (j.csrfToken) env.secrets.add(j.csrfToken);
  return r;
};

/** what the console and `coffre login` do: on 429 PROOF_REQUIRED, solve and send again */
async function withProof(
  send: (extra: Record<string, unknown>) => Promise<Answer>,
): Promise<{ r: Answer; bits: number }> {
  let r = await send({});
  let bits = 0;
  const p = json(r).error?.code === 'PROOF_REQUIRED' ? json(r).error!.details!.proof! : undefined;
  if (p) {
    bits = p.bits;
    r = await send({ proof: { challenge: p.challenge, nonce: solveProof(p.challenge, p.bits) } });
  }
  return { r: keep(r), bits };
}

describe('brute force without lockout', () => {
  it('B3: 105 wrong passwords from 35 addresses never keep the real user out: from a known address at once, from a fresh one after a proof of work, well within a minute', async () => {
    // the victim has signed in from 127.0.1.1 before (a known address)
    expect(keep(await overHttps('victor', victim.password, '127.0.1.1')).statusCode).toBe(200);
    const attackers = Array.from({ length: 35 }, (_, i) => `127.0.2.${i + 1}`);
    const answers: Answer[] = [];
    for (let round = 0; round < 3; round++) {
      answers.push(
        ...(await Promise.all(attackers.map((ip, i) => overHttps('victor', `Guess-${round}-${i}-Wrong1x`, ip)))),
      );
      // the same attack on a name that does not exist
      answers.push(
        ...(await Promise.all(
          attackers.map((ip, i) => overHttps('no-such-victim', `Guess-${round}-${i}-Wrong1x`, ip)),
        )),
      );
    }
    expect(answers.length).toBe(210);
    expect(answers.every((r) => r.statusCode === 401 || json(r).error?.code === 'PROOF_REQUIRED')).toBe(true);
    expect(answers.filter((r) => r.statusCode === 401).length).toBe(200); // 100 evaluated per name, then friction
    // the account is under attack: an alert was raised
    expect(
      (await alerts('auth.bruteforce')).some((a) => a.targets?.includes(victim.id) && a.targets.includes('friction')),
    ).toBe(true);

    const t0 = performance.now();
    // from the known address: no friction at all
    const known = keep(await overHttps('victor', victim.password, '127.0.1.1'));
    expect(known.statusCode, known.body).toBe(200);
    // from a fresh address: a proof of work first (the same demand as for a name that does not exist), then in
    const first = await overHttps('victor', victim.password, '127.0.3.1');
    const ghost = await overHttps('no-such-victim', 'Whatever-Pass-1x', '127.0.3.1');
    expect(demand(first)).toEqual(demand(ghost));
    expect(demand(first).code).toBe('PROOF_REQUIRED');
    expect(Number(first.headers['retry-after'])).toBeGreaterThan(0);
    const fresh = await withProof((extra) => overHttps('victor', victim.password, '127.0.3.2', extra));
    expect(fresh.r.statusCode, fresh.r.body).toBe(200);
    expect(fresh.bits).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(60_000);
    // a browser that signed in before (device cookie) pays nothing, from any address
    const setCookie = fresh.r.headers['set-cookie'] as string[] | string;
    const device = (Array.isArray(setCookie) ? setCookie : [setCookie]).find((c) =>
      c.startsWith('__Host-coffre-device='),
    )!;
    expect(device).toMatch(/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+/);
    const deviceValue = device.split(';')[0]!;
    env.secrets.add(deviceValue.split('=')[1]!);
    const viaDevice = keep(await overHttps('victor', victim.password, '127.0.3.3', {}, { cookie: deviceValue }));
    expect(viaDevice.statusCode, viaDevice.body).toBe(200);
    // the attacker's own guesses keep costing proofs, and a proof is single-use and bound to its address
    const guess = await overHttps('victor', 'Another-Guess-9x', '127.0.2.1');
    expect(json(guess).error?.code).toBe('PROOF_REQUIRED');
    const p = json(guess).error!.details!.proof!;
    const nonce = solveProof(p.challenge, p.bits);
    expect(
      json(await overHttps('victor', 'Another-Guess-9x', '127.0.2.2', { proof: { challenge: p.challenge, nonce } }))
        .error?.code,
    ).toBe('PROOF_REQUIRED');
    expect(
      json(await overHttps('victor', 'Another-Guess-9x', '127.0.2.1', { proof: { challenge: p.challenge, nonce } }))
        .error?.code,
    ).toBe('INVALID_CREDENTIALS');
    expect(
      json(await overHttps('victor', 'Another-Guess-10x', '127.0.2.1', { proof: { challenge: p.challenge, nonce } }))
        .error?.code,
    ).toBe('PROOF_REQUIRED');
    // and reset still works
    const reset = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password/forgot',
      remoteAddress: '127.0.3.4',
      payload: { username: 'victor' },
    });
    expect(reset.statusCode).toBe(202);
    env.secrets.add(
      linkIn((await env.smtp.next('victor@example.test')).raw)
        .split('/')
        .pop()!,
    );
  });

  it('a guesser who does not solve the proofs costs reads only: no counter, challenge or audit row per guess; one record per address and minute', async () => {
    const w = await enrolUser(env, 'wanda', 'member');
    const ip = '127.0.5.1';
    for (let i = 0; i < 3; i++) expect((await overHttps('wanda', `Wanda-Guess-${i}-x`, ip)).statusCode).toBe(401);
    const db = env.t.appliance.db.db;
    const snapshot = async () => ({
      throttle: await db.selectFrom('login_throttle').selectAll().orderBy('key').execute(),
      proofs: (await db.selectFrom('auth_proofs').select('id_hash').execute()).length,
      audit: (await db.selectFrom('audit_events').select('seq').execute()).length,
    });
    const before = await snapshot();
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) => overHttps('wanda', `Wanda-Guess-more-${i}-x`, ip)),
    );
    expect(refused.every((r) => r.statusCode === 429 && json(r).error?.code === 'PROOF_REQUIRED')).toBe(true);
    // a forged or unsolved proof is no better, and costs no write either
    const p = json(refused[0]!).error!.details!.proof!;
    const lowered = p.challenge.replace(/^\d+\./, '1.');
    expect(
      json(
        await overHttps('wanda', 'Wanda-Guess-forged-x', ip, {
          proof: { challenge: lowered, nonce: solveProof(lowered, 1) },
        }),
      ).error?.code,
    ).toBe('PROOF_REQUIRED');
    expect(
      json(await overHttps('wanda', 'Wanda-Guess-unsolved-x', ip, { proof: { challenge: p.challenge, nonce: 'x' } }))
        .error?.code,
    ).toBe('PROOF_REQUIRED');
    expect(await snapshot()).toEqual(before);
    // the right password with a solved proof still signs in
    const ok = await withProof((extra) => overHttps('wanda', w.password, ip, extra));
    expect(ok.r.statusCode, ok.r.body).toBe(200);
    // once the minute is over, the refusals are one record for the address, with the count and the account
    env.clock.advance(61_000);
    for (let i = 0; i < 3; i++)
      expect((await overHttps('wanda', `Wanda-Guess-late-${i}-x`, '127.0.5.2')).statusCode).toBe(401);
    expect(json(await overHttps('wanda', 'Wanda-Guess-late-x', '127.0.5.2')).error?.code).toBe('PROOF_REQUIRED'); // the first refusal of a new minute writes the last one's
    await new Promise((r) => setTimeout(r, 300));
    const recs = (await audits('PROOF_REQUIRED')).map((r) =>
      Object.fromEntries(JSON.parse(r.targets!) as [string, string][]),
    );
    const mine = recs.filter((t) => t.address === ip);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ refused: '23', bits: '16', users: w.id });
  });

  it('B1: per (account, address), 3 free failures then a proof with one more bit per failure; the right password with its proof signs in', async () => {
    const u = await enrolUser(env, 'bastien', 'member');
    const ip = '198.51.100.1';
    for (let i = 0; i < 3; i++) expect((await login('bastien', 'Wrong-Password-1x', ip)).statusCode).toBe(401);
    const d1 = await login('bastien', u.password, ip);
    expect(demand(d1)).toMatchObject({ status: 429, code: 'PROOF_REQUIRED', bits: 16 });
    // a wrong password with a valid proof is evaluated (and the next proof is harder)
    const w = await withProof((extra) => login('bastien', 'Wrong-Password-2x', ip, extra));
    expect(w.r.statusCode).toBe(401);
    expect(demand(await login('bastien', u.password, ip)).bits).toBe(17);
    // another address is not slowed by this pair
    const elsewhere = keep(await login('bastien', u.password, '198.51.100.2'));
    expect(elsewhere.statusCode).toBe(200);
    const ok = await withProof((extra) => login('bastien', u.password, ip, extra));
    expect(ok.r.statusCode, ok.r.body).toBe(200);
    // a success clears the pair: no friction any more
    expect(keep(await login('bastien', u.password, ip)).statusCode).toBe(200);
  });

  it("a known client's sign-in writes one counter (the pair) and clears it; its wrong passwords still count for the account and the address", async () => {
    const u = await enrolUser(env, 'kira', 'member');
    const ip = '198.51.100.40';
    expect(keep(await login('kira', u.password, ip)).statusCode).toBe(200); // the address becomes known
    const db = env.t.appliance.db.db;
    const counters = async () =>
      Object.fromEntries(
        (await db.selectFrom('login_throttle').select(['key', 'failures']).execute())
          .filter((r) => r.key === `addr:${ip}` || r.key.startsWith('acct:') || r.key.includes(`:${ip}`))
          .map((r) => [r.key.startsWith('acct:') ? 'acct' : r.key.startsWith('addr:') ? 'addr' : 'pair', r.failures]),
      );
    const before = await counters();
    expect(keep(await login('kira', u.password, ip)).statusCode).toBe(200);
    expect(await counters()).toEqual(before); // nothing left behind by a success
    expect((await login('kira', 'Wrong-Password-9x', ip)).statusCode).toBe(401);
    const after = await counters();
    expect(after.pair).toBe(1);
    expect(after.addr).toBe((before.addr ?? 0) + 1);
    expect((after.acct ?? 0) - (before.acct ?? 0)).toBe(1);
    // the right password from there still signs in, and clears the pair
    expect(keep(await login('kira', u.password, ip)).statusCode).toBe(200);
    expect((await counters()).pair).toBeUndefined();
  });

  it('a guess sent again without the proof it was just asked for is answered after auth.throttle.refusalDelayMs', async () => {
    await enrolUser(env, 'tarquin', 'member');
    const ip = '198.51.100.50';
    for (let i = 0; i < 3; i++) expect((await login('tarquin', `Tarquin-Guess-${i}-x`, ip)).statusCode).toBe(401);
    const t0 = performance.now();
    expect(json(await login('tarquin', 'Tarquin-Guess-3-x', ip)).error?.code).toBe('PROOF_REQUIRED');
    const first = performance.now() - t0;
    const t1 = performance.now();
    expect(json(await login('tarquin', 'Tarquin-Guess-4-x', ip)).error?.code).toBe('PROOF_REQUIRED');
    const again = performance.now() - t1;
    expect(again).toBeGreaterThanOrEqual(240); // 250 ms by default, timer slack aside
    expect(first).toBeLessThan(again);
  });

  it('B3: unknown user, wrong password and disabled account give the same answer', async () => {
    const ip = '198.51.100.150';
    const unknown = await login('no-such-user', 'Wrong-Password-1x', ip);
    const wrong = await login('bastien', 'Wrong-Password-9x', '198.51.100.151');
    expect(shape(unknown)).toEqual(shape(wrong));
    expect(json(wrong).error?.code).toBe('INVALID_CREDENTIALS');
  });

  it('one shared address (NAT): a guesser behind it slows only the accounts the address is not known for; nobody there is refused the right password', async () => {
    const nat = '127.0.4.1';
    const staff = await enrolUser(env, 'nurse-ana', 'member');
    const newcomer = await enrolUser(env, 'nurse-bob', 'member');
    expect(keep(await overHttps('nurse-ana', staff.password, nat)).statusCode).toBe(200);
    // a password spray from the same address: one guess per user name
    const spray: Answer[] = [];
    for (let i = 0; i < 40; i++) spray.push(await overHttps(`staff-${i}`, 'Spring-Guess-2026x', nat));
    expect(spray.filter((r) => r.statusCode === 401).length).toBe(30);
    expect(spray.slice(30).every((r) => json(r).error?.code === 'PROOF_REQUIRED' && r.statusCode === 429)).toBe(true);
    // the spray continues: each further guess costs a proof; the staff who used this address before sign in at once
    const ana = keep(await overHttps('nurse-ana', staff.password, nat));
    expect(ana.statusCode, ana.body).toBe(200);
    // someone new at that address pays one proof, and is in
    const bob = await withProof((extra) => overHttps('nurse-bob', newcomer.password, nat, extra));
    expect(bob.r.statusCode, bob.r.body).toBe(200);
    // the guesser then aims at ana from the same (known) address: after 3 failures even that pair pays, but ana still gets in
    for (let i = 0; i < 3; i++) expect((await overHttps('nurse-ana', `Ana-Guess-${i}-x`, nat)).statusCode).toBe(401);
    expect(json(await overHttps('nurse-ana', 'Ana-Guess-4-x', nat)).error?.code).toBe('PROOF_REQUIRED');
    const again = await withProof((extra) => overHttps('nurse-ana', staff.password, nat, extra));
    expect(again.r.statusCode, again.r.body).toBe(200);
    expect((await alerts('auth.bruteforce')).some((a) => a.targets?.includes('127.0.4.1'))).toBe(true);
  });

  it('B2: many usernames from one address need a proof (429 with Retry-After); IPv4 /32 and IPv6 /64', async () => {
    let last;
    for (let i = 0; i < 31; i++) last = await login(`someone${i}`, 'Wrong-Password-1x', '198.51.100.99');
    expect(last!.statusCode).toBe(429);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    // another /64 is untouched; the same /64 shares the budget
    for (let i = 0; i < 30; i++) await login(`other${i}`, 'Wrong-Password-1x', `2001:db8:1:2::${(i + 1).toString(16)}`);
    expect((await login('other-x', 'Wrong-Password-1x', '2001:db8:1:2:ffff::1')).statusCode).toBe(429);
    expect((await login('other-x', 'Wrong-Password-1x', '2001:db8:1:3::1')).statusCode).toBe(401);
  });

  it('B4: 413 for oversized bodies, counters exact under parallel bursts, X-Forwarded-For only from trusted proxies', async () => {
    const big = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'x', password: 'y'.repeat(2_000_000) }),
    });
    expect(big.statusCode).toBe(413);
    // a parallel burst from one address: exactly the budget (30) is evaluated, the rest are asked for a proof
    const burst = await Promise.all(
      Array.from({ length: 45 }, (_, i) => login(`burst${i}`, 'Wrong-Password-1x', '198.51.100.77')),
    );
    expect(burst.filter((r) => r.statusCode === 401).length).toBe(30);
    expect(burst.filter((r) => r.statusCode === 429).length).toBe(15);
    const row = await env.t.appliance.db.db
      .selectFrom('login_throttle')
      .selectAll()
      .where('key', '=', 'addr:198.51.100.77')
      .executeTakeFirstOrThrow();
    expect(row.failures).toBe(30);
    // X-Forwarded-For from an untrusted peer is ignored (still counted as 198.51.100.77)…
    const spoof = await login(
      'burst-x',
      'Wrong-Password-1x',
      '198.51.100.77',
      {},
      { 'x-forwarded-for': '203.0.113.1' },
    );
    expect(spoof.statusCode).toBe(429);
    // …but believed from the configured proxy
    const viaProxy = await login(
      'burst-x',
      'Wrong-Password-1x',
      '192.0.2.254',
      {},
      { 'x-forwarded-for': '203.0.113.1' },
    );
    expect(viaProxy.statusCode).toBe(401);
    const viaProxyBlocked = await login(
      'burst-y',
      'Wrong-Password-1x',
      '192.0.2.254',
      {},
      { 'x-forwarded-for': '198.51.100.77' },
    );
    expect(viaProxyBlocked.statusCode).toBe(429);
    const cfg = env.t.appliance.config.http;
    expect(cfg.requestTimeoutMs).toBeGreaterThan(0);
    expect(cfg.headersTimeoutMs).toBeLessThanOrEqual(10_000);
  });
});
