import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from './support.js';
import { enrolUser, signIn, tokenFor } from './helpers.js';

/**
 * A flood of bad credentials, over real HTTPS from loopback addresses: failed
 * bearer/cookie authentication is cut per address (429 + Retry-After) before any database work,
 * recorded in aggregate (one audit record per address and minute, with counts), and a burst
 * raises `auth.flood`. People behind the flooding address who already authenticated go on.
 */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv({ COFFRE_CFG_auth__throttle__floodAlertPerMinute: '100' }, { listen: true });
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const me = (from: string, headers: Record<string, string>) => env.https('GET', '/api/v1/auth/me', { from, headers });
const db = () => env.t.appliance.db.db;

describe('flood of bad credentials', () => {
  it('B5: 30 bad tokens per address and minute, then 429 without database work; aggregated audit; auth.flood', async () => {
    const u = await enrolUser(env, 'flood-fiona', 'member');
    const token = await tokenFor(env, u);
    const flooder = '127.0.11.1';
    // issued through inject, never used over HTTPS yet (before the flood: signing in with the second factor moves the clock)
    const other = await enrolUser(env, 'flood-felix', 'member');
    const fresh = await tokenFor(env, other);
    // someone behind the same address who used their token before the flood
    expect((await me(flooder, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    const bad = Array.from({ length: 120 }, (_, i) => `cft_${String(i).padStart(43, 'x')}`);
    const answers = [];
    for (let i = 0; i < bad.length; i += 20)
      answers.push(
        ...(await Promise.all(bad.slice(i, i + 20).map((t) => me(flooder, { authorization: `Bearer ${t}` })))),
      );
    expect(answers.filter((r) => r.statusCode === 401).length).toBe(30);
    const cut = answers.filter((r) => r.statusCode === 429);
    expect(cut.length).toBe(90);
    expect(Number(cut[0]!.headers['retry-after'])).toBeGreaterThan(0);
    // refused before the database: a token that never authenticated is refused too, even a valid one…
    // (held auth.throttle.refusalDelayMs, 250 ms, before the answer: a flooder waiting for it is slowed down)
    const t0 = performance.now();
    expect(
      (await me(flooder, { authorization: `Bearer ${fresh.slice(0, -1)}${fresh.endsWith('A') ? 'B' : 'A'}` }))
        .statusCode,
    ).toBe(429);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    // …while a credential that authenticated recently goes on (and is still checked: revocation applies)
    expect((await me(flooder, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    // bad cookies count the same way, per address; another address is not affected
    const cookieFlood = [];
    for (let i = 0; i < 35; i++)
      cookieFlood.push(await me('127.0.11.2', { cookie: `__Host-coffre=${'z'.repeat(43)}${i}` }));
    expect(cookieFlood.filter((r) => r.statusCode === 401).length).toBe(30);
    expect(cookieFlood.filter((r) => r.statusCode === 429).length).toBe(5);
    const s = await signIn(env, other, '127.0.11.3');
    expect((await me('127.0.11.3', { cookie: s.cookie })).statusCode).toBe(200);
    // a burst: alerts per address and for all addresses together (100 per minute in this test)
    await new Promise((r) => setTimeout(r, 100));
    const alerts = await db().selectFrom('alerts').selectAll().where('kind', '=', 'auth.flood').execute();
    expect(alerts.some((a) => a.targets?.includes('127.0.11.1'))).toBe(true);
    expect(alerts.some((a) => a.targets?.includes('"scope":"all"'))).toBe(true);
    // nothing is recorded per request; once the minute is over, one record per address with the counts
    expect(
      await db().selectFrom('audit_events').selectAll().where('action', '=', 'auth.refused').execute(),
    ).toHaveLength(0);
    env.clock.advance(61_000);
    expect((await me('127.0.11.4', { authorization: 'Bearer cft_nope' })).statusCode).toBe(401); // any failure after the minute flushes it
    await new Promise((r) => setTimeout(r, 300));
    const recs = await db().selectFrom('audit_events').selectAll().where('action', '=', 'auth.refused').execute();
    const targets = recs.map((r) => Object.fromEntries(JSON.parse(r.targets!) as [string, string][]));
    const byAddress = Object.fromEntries(targets.map((t) => [t.address!, t]));
    expect(byAddress['127.0.11.1']).toMatchObject({ failures: '30', refused: '91' });
    expect(byAddress['127.0.11.2']).toMatchObject({ failures: '30', refused: '5' });
    expect(targets.filter((t) => t.address === '127.0.11.1')).toHaveLength(1);
    // a new minute: a new budget
    expect((await me(flooder, { authorization: 'Bearer cft_again' })).statusCode).toBe(401);
  });
});
