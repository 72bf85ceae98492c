import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { acceptedLanguages, pickLanguage } from '../../src/shared/i18n/index.js';

/**
 * Each user's language (docs/i18n.md): stored on the appliance (`PUT /auth/me/language`), shown
 * by `/auth/me`, chosen only among the supported languages, and only by the user for themself.
 * A whole appliance (SoftHSM2, SQLite, audit trail, SMTP); only the clock is fake.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};

beforeAll(async () => {
  env = await openIdentityEnv();
  for (const [name, role] of [
    ['carla', 'member'],
    ['adam', 'admin'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const me = async (who: string) =>
  (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: s[who]!.headers })).json().user;
const setLang = (who: string, language: unknown, headers: Record<string, string> = s[who]!.headers) =>
  env.app.inject({ method: 'PUT', url: '/api/v1/auth/me/language', headers, payload: { language } });

describe('a user’s language', () => {
  it('starts unset (follow the browser), is set to French, then back to the browser', async () => {
    expect((await me('carla')).language).toBeNull();
    const r = await setLang('carla', 'fr');
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ language: 'fr' });
    expect((await me('carla')).language).toBe('fr');
    // another user's choice is untouched
    expect((await me('adam')).language).toBeNull();
    expect((await setLang('carla', null)).statusCode).toBe(200);
    expect((await me('carla')).language).toBeNull();
  });

  it('refuses a language the appliance does not speak, and anything but the field', async () => {
    for (const bad of ['de', 'FR', 'fr-FR', 'english', 42]) {
      const r = await setLang('carla', bad);
      expect(r.statusCode, `${String(bad)} ${r.body}`).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION');
    }
    const extra = await env.app.inject({
      method: 'PUT',
      url: '/api/v1/auth/me/language',
      headers: s.carla!.headers,
      payload: { language: 'fr', userId: u.adam!.id },
    });
    expect(extra.statusCode).toBe(400);
    expect((await me('adam')).language).toBeNull();
  });

  it('needs a session and its CSRF token', async () => {
    expect(
      (await env.app.inject({ method: 'PUT', url: '/api/v1/auth/me/language', payload: { language: 'fr' } }))
        .statusCode,
    ).toBe(401);
    const { 'x-csrf-token': _csrf, ...noCsrf } = s.carla!.headers;
    expect((await setLang('carla', 'fr', noCsrf)).statusCode).toBe(403);
    expect((await me('carla')).language).toBeNull();
  });

  it('an admin invites a user in French: the invitee starts in French', async () => {
    const r = await env.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: s.adam!.headers,
      payload: { username: 'zoe', email: 'zoe@example.test', role: 'member', language: 'fr' },
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().user.language).toBe('fr');
    const bad = await env.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: s.adam!.headers,
      payload: { username: 'zed', email: 'zed@example.test', role: 'member', language: 'xx' },
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('language negotiation', () => {
  it('reads Accept-Language by quality, drops unsupported and q=0 entries', () => {
    expect(acceptedLanguages('fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5')).toEqual(['fr', 'en']);
    expect(acceptedLanguages('de-DE,en;q=0.3,fr;q=0.6')).toEqual(['fr', 'en']);
    expect(acceptedLanguages('fr;q=0, en')).toEqual(['en']);
    expect(acceptedLanguages('fr;q=abc')).toEqual([]);
    expect(acceptedLanguages(undefined)).toEqual([]);
  });
  it('the stored choice wins over the header; English when neither says', () => {
    expect(pickLanguage('fr', 'en-US')).toBe('fr');
    expect(pickLanguage(null, 'fr-FR,fr;q=0.9')).toBe('fr');
    expect(pickLanguage('de', 'de-DE')).toBe('en');
    expect(pickLanguage(undefined, undefined)).toBe('en');
  });
});
