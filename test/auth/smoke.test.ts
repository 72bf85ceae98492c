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
    expect(m.totp).toBeUndefined();
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
});
