import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { FastifyPluginAsync } from 'fastify';
import { build } from '../../src/http/index.js';
import { isObsoleteBrowser } from '../../src/http/browsers.js';
import { createLogger } from '../../src/shared/logger.js';
import { AppError } from '../../src/shared/errors.js';
import { Value } from '@sinclair/typebox/value';
import { HttpSection } from '../../src/config/sections/http.js';

const http = Value.Default(HttpSection, {}) as never;
function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write: (c, _e, cb) => (lines.push(c.toString()), cb()) });
  return { log: createLogger({ destination: stream, level: 'debug' }), text: () => lines.join('') };
}

describe('route-permission gate', () => {
  it('a route without a declared permission stops start-up, naming the route', async () => {
    const bad: FastifyPluginAsync = async (app) => {
      app.get('/ok', { config: { public: true } }, async () => ({}));
      app.post('/things/:id', async () => ({}));
    };
    const app = await build({ http, log: capture().log, api: [bad] });
    await expect(app.ready()).rejects.toMatchObject({
      code: 'ROUTE_PERMISSION_MISSING',
      message: expect.stringContaining('POST /api/v1/things/:id'),
    });
  });

  it('denies by default: a non-public route answers 401 without an authenticator, and the handler never runs', async () => {
    let ran = false;
    const p: FastifyPluginAsync = async (app) => {
      app.post('/secret', { config: { permission: 'users:manage' } }, async () => ((ran = true), { leaked: true }));
    };
    const app = await build({ http, log: capture().log, api: [p] });
    const r = await app.inject({ method: 'POST', url: '/api/v1/secret', payload: { a: 1 } });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('UNAUTHENTICATED');
    expect(ran).toBe(false);
    await app.close();
  });

  it('asks the authenticator, then authorises the declared permission', async () => {
    const seen: string[] = [];
    const p: FastifyPluginAsync = async (app) => {
      app.get('/x', { config: { permission: 'keys:read' } }, async (req) => ({ actor: req.actor?.id }));
    };
    const app = await build({
      http,
      log: capture().log,
      api: [p],
      auth: {
        authenticate: async (req) => {
          if (req.headers.authorization !== 'Bearer good')
            throw new AppError('UNAUTHENTICATED', 'authentication required', { httpStatus: 401 });
          return { id: 'user:1', kind: 'user', roles: ['auditor'] };
        },
        authorize: async (actor, perm) => {
          seen.push(perm);
          if (!actor.roles.includes('admin')) throw new AppError('FORBIDDEN', 'not allowed', { httpStatus: 403 });
        },
      },
    });
    expect((await app.inject({ url: '/api/v1/x' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/v1/x', headers: { authorization: 'Bearer good' } })).statusCode).toBe(403);
    expect(seen).toEqual(['keys:read']);
    await app.close();
  });
});

describe('errors', () => {
  it('500 and 404 bodies carry a code and request id, never a stack or internals; the log has them', async () => {
    const cap = capture();
    const p: FastifyPluginAsync = async (app) => {
      app.get('/boom', { config: { public: true } }, async () => {
        throw new Error('SQLITE_CORRUPT at /var/lib/coffre/coffre.db');
      });
      app.get('/nope', { config: { public: true } }, async () => {
        throw new AppError('KEYS_UNAVAILABLE', 'HSM unavailable (CKR_DEVICE_REMOVED)', {
          httpStatus: 503,
          expose: true,
        });
      });
    };
    const app = await build({ http, log: cap.log, api: [p] });
    const r = await app.inject({ url: '/api/v1/boom' });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error', requestId: expect.any(String) } });
    expect(r.body).not.toMatch(/SQLITE|\/var\/lib|at .*\.ts/);
    expect(cap.text()).toMatch(/SQLITE_CORRUPT/);
    const k = await app.inject({ url: '/api/v1/nope' });
    expect(k.statusCode).toBe(503);
    expect(k.json().error).toMatchObject({ code: 'KEYS_UNAVAILABLE', message: 'HSM unavailable (CKR_DEVICE_REMOVED)' });
    const nf = await app.inject({ url: '/api/v1/../../etc/passwd' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json().error.code).toBe('NOT_FOUND');
    await app.close();
  });

  it('an oversized body gets 413, and authenticated-looking replies are not cached', async () => {
    const p: FastifyPluginAsync = async (app) => {
      app.post('/echo', { config: { public: true } }, async (req) => ({ n: JSON.stringify(req.body).length }));
    };
    const app = await build({
      http: { ...(http as object), bodyLimitBytes: 1024 } as never,
      log: capture().log,
      api: [p],
    });
    const r = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { x: 'a'.repeat(5000) } });
    expect(r.statusCode).toBe(413);
    expect(r.json().error.code).toBe('BODY_TOO_LARGE');
    const ok = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { x: 'a' } });
    expect(ok.headers['cache-control']).toBe('no-store');
    await app.close();
  });

  it('the global rate limit answers 429 with Retry-After', async () => {
    const p: FastifyPluginAsync = async (app) => {
      app.get('/ping', { config: { public: true } }, async () => ({}));
    };
    const app = await build({ http, log: capture().log, api: [p], rateLimitPerMinute: 5 });
    const codes: number[] = [];
    let retry: unknown;
    for (let i = 0; i < 7; i++) {
      const r = await app.inject({ url: '/api/v1/ping' });
      codes.push(r.statusCode);
      if (r.statusCode === 429) retry = r.headers['retry-after'];
    }
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(Number(retry)).toBeGreaterThan(0);
    await app.close();
  });
});

describe('logging', () => {
  it('redacts authorization, cookies, passwords, PINs, tokens and links', async () => {
    const cap = capture();
    const p: FastifyPluginAsync = async (app) => {
      app.post('/login', { config: { public: true } }, async (req) => {
        req.log.info({ body: req.body }, 'login attempt');
        return {};
      });
    };
    const app = await build({ http, log: cap.log, api: [p] });
    cap.log.info(
      { pin: '12345678', user: { password: 'hunter2hunter2' }, token: 'tok_abcdef', link: 'https://x/enrol/abc' },
      'secrets',
    );
    cap.log.info(
      { body: { challenge: 'ch_1', code: '482913' }, user: { recoveryCodes: ['rc-7f3k-99qa'] } },
      'second factor',
    );
    // an error's code is not a secret: operators need it
    cap.log.error({ err: Object.assign(new Error('HSM unavailable'), { code: 'KEYS_UNAVAILABLE' }) }, 'failed');
    await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      headers: { authorization: 'Bearer sekret-token', cookie: '__Host-coffre=sess123' },
      payload: { password: 'Correct-Horse-9' },
    });
    const t = cap.text();
    for (const s of [
      '12345678',
      'hunter2hunter2',
      'tok_abcdef',
      'https://x/enrol/abc',
      'sekret-token',
      'sess123',
      'Correct-Horse-9',
      '482913',
      'rc-7f3k-99qa',
    ])
      expect(t).not.toContain(s);
    expect(t).toContain('[REDACTED]');
    expect(t).toContain('"code":"KEYS_UNAVAILABLE"');
    await app.close();
  });
});

describe('obsolete browsers', () => {
  it('refuses IE, legacy Edge and old engines, not current browsers or non-browser clients', () => {
    for (const ua of [
      'Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko',
      'Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)',
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.17763',
      'Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36',
      'Mozilla/5.0 (X11; Linux x86_64; rv:52.0) Gecko/20100101 Firefox/52.0',
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/603.3.8 (KHTML, like Gecko) Version/10.1.2 Safari/603.3.8',
    ])
      expect(isObsoleteBrowser(ua), ua).toBe(true);
    for (const ua of [
      undefined,
      'curl/8.5.0',
      'coffre-cli/0.1.0 node/24',
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36',
      'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0',
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
    ])
      expect(isObsoleteBrowser(ua), String(ua)).toBe(false);
  });
});
