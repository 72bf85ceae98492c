import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { Value } from '@sinclair/typebox/value';
import { build } from '../../src/http/index.js';
import { HttpSection, type HttpConfig } from '../../src/config/sections/http.js';
import { MonitoringSection, type MonitoringConfig } from '../../src/config/sections/monitoring.js';
import { installShedding } from '../../src/monitoring/shedding.js';
import { createLogger } from '../../src/shared/logger.js';

/**
 * Load shedding through the real app: per-route-group budgets per address (before authentication)
 * and per user (after), 429 with Retry-After; under-pressure answers 503 with Retry-After while the
 * event loop lags, except /healthz.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};

beforeAll(async () => {
  env = await openIdentityEnv({
    COFFRE_CFG_monitoring__budgets: JSON.stringify({ monitoring: { perAddress: 5, perUser: 3 } }),
    COFFRE_CFG_monitoring__pressure: JSON.stringify({ enabled: false }),
  });
  for (const [name, role] of [
    ['adele', 'admin'],
    ['bob', 'backup-operator'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
}, 120_000);
afterAll(async () => {
  await env?.close();
});

const get = (who: string | null, url: string, remoteAddress = '127.0.0.1') =>
  env.app.inject({ method: 'GET', url, remoteAddress, headers: who ? s[who]!.headers : {} });

describe('request budgets per route group', { timeout: 60_000 }, () => {
  it('per user, then per address; other addresses and other groups are not affected', async () => {
    for (let i = 0; i < 3; i++) expect((await get('adele', '/api/v1/monitoring/now')).statusCode).toBe(200);
    const over = await get('adele', '/api/v1/monitoring/now');
    expect(over.statusCode).toBe(429);
    expect(over.json().error).toMatchObject({
      code: 'RATE_LIMITED',
      message: expect.stringContaining('for this account (monitoring)'),
    });
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // another user from the same address: its own 3... until the address has spent its 5
    expect((await get('bob', '/api/v1/monitoring/now')).statusCode).toBe(200);
    const addr = await get('bob', '/api/v1/monitoring/now');
    expect(addr.statusCode).toBe(429);
    expect(addr.json().error.message).toContain('from this address (monitoring)');
    // anonymous callers from that address are stopped before authentication (429, not 401)
    expect((await get(null, '/api/v1/monitoring/now')).statusCode).toBe(429);
    // another group, and another address, still work
    expect((await get('adele', '/api/v1/auth/me')).statusCode).toBe(200);
    expect((await get('bob', '/api/v1/monitoring/now', '127.0.0.9')).statusCode).toBe(200);
  });
});

describe('under pressure', { timeout: 60_000 }, () => {
  it('503 OVERLOADED with Retry-After while the event loop lags; /healthz still answers; back once it recovers', async () => {
    // the real plugin on an app of its own (a whole appliance's start-up lags the loop by itself)
    const cfg = Value.Default(MonitoringSection, {
      pressure: { maxEventLoopDelayMs: 100, retryAfterSeconds: 7, sustainMs: 0 },
    }) as MonitoringConfig;
    const app = await build({
      http: Value.Default(HttpSection, {}) as HttpConfig,
      log: createLogger({ level: 'silent', destination: 'stderr' }),
      extensions: [(a) => installShedding(a, cfg)],
      api: [async (api) => void api.get('/ping', { config: { public: true } }, async () => ({ ok: true }))],
    });
    try {
      await app.ready();
      expect((await app.inject({ method: 'GET', url: '/api/v1/ping' })).statusCode).toBe(200);
      // the event loop stuck in 400 ms slices for 2.5 s (under-pressure averages the delay over each second)
      const end = Date.now() + 2500;
      while (Date.now() < end) {
        const t = Date.now() + 400;
        while (Date.now() < t);
        await new Promise((res) => setImmediate(res));
      }
      const r = await app.inject({ method: 'GET', url: '/api/v1/ping' });
      expect(r.statusCode, r.body).toBe(503);
      expect(r.headers['retry-after']).toBe('7');
      expect(r.json().error.code).toBe('OVERLOADED');
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect([ready.statusCode, ready.json()]).toEqual([
        503,
        { status: 'not-ready', components: { pressure: 'down' } },
      ]);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      let back = 503;
      for (let i = 0; i < 50 && back === 503; i++) {
        await new Promise((res) => setTimeout(res, 100));
        back = (await app.inject({ method: 'GET', url: '/api/v1/ping' })).statusCode;
      }
      expect(back).toBe(200);
    } finally {
      await app.close();
    }
  });
});
