import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from './support.js';
import { enrolUser, signIn } from './helpers.js';

let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv();
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

describe('identity smoke', () => {
  it('enrols a member and an admin, signs them in', async () => {
    const m = await enrolUser(env, 'martine', 'member');
    // every role has a second factor by default
    expect(m.totp).toBeDefined();
    const s = await signIn(env, m);
    const me = await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: s.cookie } });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json().user.username).toBe('martine');
    const a = await enrolUser(env, 'adele', 'admin');
    expect(a.totp).toBeDefined();
    const sa = await signIn(env, a);
    const users = await env.app.inject({ method: 'GET', url: '/api/v1/users', headers: { cookie: sa.cookie } });
    expect(users.statusCode).toBe(200);
    expect(users.body).not.toMatch(/argon2|email/);
  });

  it('OpenAPI documents the identity routes with request and response schemas', async () => {
    const r = await env.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    const doc = r.json() as {
      paths: Record<string, Record<string, { requestBody?: unknown; responses?: Record<string, unknown> }>>;
    };
    for (const [p, m] of [
      ['/api/v1/auth/login', 'post'],
      ['/api/v1/auth/enrol', 'post'],
      ['/api/v1/users', 'post'],
      ['/api/v1/workspaces', 'post'],
      ['/api/v1/access-reviews/{id}/items/{itemId}', 'post'],
    ] as const) {
      const op = doc.paths[p]?.[m];
      expect(op, p).toBeDefined();
      expect(op!.requestBody, p).toBeDefined();
      expect(
        Object.keys(op!.responses ?? {}).some((c) => c.startsWith('2')),
        p,
      ).toBe(true);
    }
    for (const [p, ops] of Object.entries(doc.paths)) {
      if (!/\/(auth|users|workspaces|access-reviews)/.test(p) || /documents|folders|usage/.test(p)) continue;
      for (const [m, op] of Object.entries(ops))
        expect(
          Object.keys(op.responses ?? {}).some((c) => c.startsWith('2')),
          `${m} ${p}`,
        ).toBe(true);
    }
  });
});
