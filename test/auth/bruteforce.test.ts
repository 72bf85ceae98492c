import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, type IdentityEnv } from './support.js';
import { enrolUser, type Enrolled } from './helpers.js';

/** Brute force and flood (checklist B1–B4). Counters live in the database; the clock is fake. */
let env: IdentityEnv;
let victim: Enrolled;
beforeAll(async () => {
  env = await openIdentityEnv({ COFFRE_CFG_http__trustedProxies: '["192.0.2.254"]' });
  victim = await enrolUser(env, 'victor', 'member');
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const login = (username: string, password: string, ip: string, headers: Record<string, string> = {}) =>
  env.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: ip, headers, payload: { username, password } });
const shape = (r: { statusCode: number; body: string }) => ({ status: r.statusCode, body: r.body.replace(/"requestId":"[^"]+"/, '') });
const audits = (reason: string) => env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('reason', '=', reason).execute();

describe('brute force', () => {
  it('B1: per account, exponential back-off from one address (same answer while throttled)', async () => {
    const u = await enrolUser(env, 'bastien', 'member');
    const ip = '198.51.100.1';
    for (let i = 0; i < 3; i++) expect((await login('bastien', 'Wrong-Password-1x', ip)).statusCode).toBe(401);
    // 4th attempt at once: throttled — even the right password is refused, with the same answer
    const throttled = await login('bastien', u.password, ip);
    const wrong = await login('bastien', 'Wrong-Password-2x', ip);
    expect(shape(throttled)).toEqual(shape(wrong));
    expect((await audits('THROTTLED')).length).toBeGreaterThanOrEqual(1);
    env.clock.advance(1_100); // back-off after 3 failures is 1 s
    expect((await login('bastien', 'Wrong-Password-3x', ip)).statusCode).toBe(401);
    expect((await login('bastien', u.password, ip)).statusCode).toBe(401); // now 2 s
    env.clock.advance(2_100);
    const ok = await login('bastien', u.password, ip);
    expect(ok.statusCode, ok.body).toBe(200);
    env.secrets.add(ok.json().csrfToken);
  });

  it('B1: at most 100 evaluated failures per account per hour, all addresses together', async () => {
    const u = await enrolUser(env, 'berenice', 'member');
    const attempts = await Promise.all(Array.from({ length: 110 }, (_, i) => login('berenice', `Wrong-Pass-${i}x`, `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`)));
    expect(attempts.every((r) => r.statusCode === 401)).toBe(true);
    const evaluated = (await env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('reason', '=', 'BAD_PASSWORD').execute()).filter((e) => e.targets?.includes(u.id));
    expect(evaluated.length).toBe(100);
    // the right password from yet another address is not evaluated during that hour…
    expect((await login('berenice', u.password, '10.10.0.1')).statusCode).toBe(401);
    // …and works once the hour has passed
    env.clock.advance(3_600_000 + 1000);
    const ok = await login('berenice', u.password, '10.10.0.2');
    expect(ok.statusCode).toBe(200);
    env.secrets.add(ok.json().csrfToken);
    const alerts = await env.t.appliance.db.db.selectFrom('alerts').selectAll().where('kind', '=', 'auth.bruteforce').execute();
    expect(alerts.length).toBeGreaterThanOrEqual(1);
  });

  it('B2: many usernames from one address get 429 with Retry-After (IPv4 /32, IPv6 /64)', async () => {
    let last;
    for (let i = 0; i < 31; i++) last = await login(`someone${i}`, 'Wrong-Password-1x', '198.51.100.99');
    expect(last!.statusCode).toBe(429);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    // another /64 is untouched; the same /64 shares the budget
    for (let i = 0; i < 30; i++) await login(`other${i}`, 'Wrong-Password-1x', `2001:db8:1:2::${(i + 1).toString(16)}`);
    expect((await login('other-x', 'Wrong-Password-1x', '2001:db8:1:2:ffff::1')).statusCode).toBe(429);
    expect((await login('other-x', 'Wrong-Password-1x', '2001:db8:1:3::1')).statusCode).toBe(401);
    expect((await audits('THROTTLED_ADDRESS')).length).toBeGreaterThan(0);
  });

  it('B3: after 50 failures from A the real user still signs in from B and reset still works; unknown, wrong and throttled look alike', async () => {
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await login('victor', `Guess-Number-${i}x`, '203.0.113.66'));
    expect(answers.filter((r) => r.statusCode === 429).length).toBeGreaterThan(0);
    const fromB = await login('victor', victim.password, '198.51.100.200');
    expect(fromB.statusCode, fromB.body).toBe(200);
    env.secrets.add(fromB.json().csrfToken);
    const reset = await env.app.inject({ method: 'POST', url: '/api/v1/auth/password/forgot', remoteAddress: '198.51.100.200', payload: { username: 'victor' } });
    expect(reset.statusCode).toBe(202);
    env.secrets.add(linkIn((await env.smtp.next('victor@example.test')).raw).split('/').pop()!);
    // unknown user, wrong password, throttled account: same status and body
    const ip = '198.51.100.150';
    const unknown = await login('no-such-user', 'Wrong-Password-1x', ip);
    for (let i = 0; i < 3; i++) await login('victor', 'Wrong-Password-1x', ip);
    const throttled = await login('victor', victim.password, ip);
    const wrong = await login('victor', 'Wrong-Password-9x', '198.51.100.151');
    expect(shape(unknown)).toEqual(shape(wrong));
    expect(shape(throttled)).toEqual(shape(wrong));
  });

  it('B4: 429 + Retry-After, 413 for oversized bodies, counters exact under parallel bursts, X-Forwarded-For only from trusted proxies', async () => {
    const big = await env.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ username: 'x', password: 'y'.repeat(2_000_000) }) });
    expect(big.statusCode).toBe(413);
    // a parallel burst from one address: exactly the budget (30) is evaluated, the rest get 429
    const burst = await Promise.all(Array.from({ length: 45 }, (_, i) => login(`burst${i}`, 'Wrong-Password-1x', '198.51.100.77')));
    expect(burst.filter((r) => r.statusCode === 401).length).toBe(30);
    expect(burst.filter((r) => r.statusCode === 429).length).toBe(15);
    const row = await env.t.appliance.db.db.selectFrom('login_throttle').selectAll().where('key', '=', 'addr:198.51.100.77').executeTakeFirstOrThrow();
    expect(row.failures).toBe(30);
    // X-Forwarded-For from an untrusted peer is ignored (still throttled as 198.51.100.77)…
    const spoof = await login('burst-x', 'Wrong-Password-1x', '198.51.100.77', { 'x-forwarded-for': '203.0.113.1' });
    expect(spoof.statusCode).toBe(429);
    // …but believed from the configured proxy
    const viaProxy = await login('burst-x', 'Wrong-Password-1x', '192.0.2.254', { 'x-forwarded-for': '203.0.113.1' });
    expect(viaProxy.statusCode).toBe(401);
    const viaProxyBlocked = await login('burst-y', 'Wrong-Password-1x', '192.0.2.254', { 'x-forwarded-for': '198.51.100.77' });
    expect(viaProxyBlocked.statusCode).toBe(429);
    const cfg = env.t.appliance.config.http;
    expect(cfg.requestTimeoutMs).toBeGreaterThan(0);
    expect(cfg.headersTimeoutMs).toBeLessThanOrEqual(10_000);
  });
});
