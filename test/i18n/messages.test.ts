import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, type IdentityEnv, type Mail } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { ROOT } from '../support/cli.js';
import enErrors from '../../src/shared/i18n/locales/en/errors.json' with { type: 'json' };
import frErrors from '../../src/shared/i18n/locales/fr/errors.json' with { type: 'json' };

/**
 * What the appliance itself writes follows the reader's language (docs/i18n.md): error messages
 * (the signed-in user's choice, else Accept-Language; codes unchanged), the obsolete-browser page
 * (Accept-Language) and e-mails (the recipient's stored language). A whole appliance with a real
 * SMTP server; only the clock is fake.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
const FR = frErrors.codes as Record<string, string>;

beforeAll(async () => {
  env = await openIdentityEnv();
  for (const [name, role] of [
    ['francoise', 'member'],
    ['edward', 'member'],
    ['nadia', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
  const r = await env.app.inject({
    method: 'PUT',
    url: '/api/v1/auth/me/language',
    headers: s.francoise!.headers,
    payload: { language: 'fr' },
  });
  expect(r.statusCode, r.body).toBe(200);
  const e = await env.app.inject({
    method: 'PUT',
    url: '/api/v1/auth/me/language',
    headers: s.edward!.headers,
    payload: { language: 'en' },
  });
  expect(e.statusCode, e.body).toBe(200);
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const get = (url: string, headers: Record<string, string> = {}) => env.app.inject({ method: 'GET', url, headers });
const missing = '/api/v1/workspaces/00000000000000000000000000/documents';

describe('error messages', () => {
  it('a French user reads the message in French whatever the browser says; the code does not change', async () => {
    const en = await get(missing, { ...s.edward!.headers, 'accept-language': 'fr-FR,fr;q=0.9' });
    const fr = await get(missing, { ...s.francoise!.headers, 'accept-language': 'en-US' });
    expect(fr.statusCode).toBe(en.statusCode);
    expect(en.statusCode).toBeGreaterThanOrEqual(400);
    const code = en.json().error.code as string;
    expect(fr.json().error.code).toBe(code);
    // edward chose English: the module's own English message, not the French one
    expect(en.json().error.message).not.toBe(FR[code]);
    expect(fr.json().error.message).toBe(FR[code]);
  });

  it('without a stored choice, Accept-Language decides (English when it names nothing we speak)', async () => {
    const fr = await get(missing, { ...s.nadia!.headers, 'accept-language': 'fr-CA, en;q=0.5' });
    const de = await get(missing, { ...s.nadia!.headers, 'accept-language': 'de-DE' });
    const code = fr.json().error.code as string;
    expect(fr.json().error.message).toBe(FR[code]);
    expect(de.json().error.code).toBe(code);
    expect(de.json().error.message).not.toBe(FR[code]);
  });

  it('anonymous refusals, validation errors and unknown routes are translated too', async () => {
    const anon = await get('/api/v1/auth/me', { 'accept-language': 'fr' });
    expect(anon.statusCode).toBe(401);
    expect(anon.json().error).toMatchObject({ code: 'UNAUTHENTICATED', message: FR.UNAUTHENTICATED });
    const bad = await env.app.inject({
      method: 'PUT',
      url: '/api/v1/auth/me/language',
      headers: s.francoise!.headers,
      payload: { language: 'de' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION');
    expect(bad.json().error.message).toMatch(/^requête invalide : /);
    expect(bad.json().error.message).not.toMatch(/invalid request/);
    const none = await get('/api/v1/no-such-thing', { 'accept-language': 'fr' });
    expect(none.statusCode).toBe(404);
    expect(none.json().error).toMatchObject({ code: 'NOT_FOUND', message: frErrors.noRoute });
    expect((await get('/api/v1/no-such-thing')).json().error.message).toBe('no such route');
  });

  it('every error code thrown in src/ has a message in both catalogues', () => {
    const codes = new Set<string>();
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.tsx?$/.test(e.name) && !p.includes(`${path.sep}console${path.sep}app${path.sep}`)) {
          const text = fs.readFileSync(p, 'utf8');
          for (const m of text.matchAll(/[A-Za-z]*Error\(\s*'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
          for (const m of text.matchAll(/\bcode: '([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    expect(codes.size).toBeGreaterThan(100);
    const en = enErrors.codes as Record<string, string>;
    expect([...codes].filter((c) => !en[c] || !FR[c]).sort()).toEqual([]);
  });
});

describe('the obsolete-browser page', () => {
  const IE = 'Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko';
  it('is in French for a French browser, in English otherwise, and says so', async () => {
    const fr = await get('/', { 'user-agent': IE, 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' });
    expect(fr.statusCode).toBe(426);
    expect(fr.headers['content-language']).toBe('fr');
    expect(fr.body).toContain('<html lang="fr">');
    expect(fr.body).toContain('Ce navigateur n’est pas pris en charge');
    expect(fr.body).toContain('Firefox 115 et plus');
    const en = await get('/', { 'user-agent': IE });
    expect(en.statusCode).toBe(426);
    expect(en.body).toContain('<html lang="en">');
    expect(en.body).toContain('This browser is not supported');
    expect(en.body).toContain('Safari 15.4+');
  });
});

/** the decoded body of a captured message (quoted-printable or base64) */
function bodyOf(m: Mail): string {
  const i = m.raw.search(/\r?\n\r?\n/);
  const head = m.raw.slice(0, i);
  const body = m.raw.slice(i).trim();
  if (/content-transfer-encoding:\s*base64/i.test(head))
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return Buffer.from(
    body.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

describe('e-mails', () => {
  it('a reset link reaches a French user in French and an English user in English; the link works in both', async () => {
    for (const who of ['francoise', 'edward']) {
      const r = await env.app.inject({
        method: 'POST',
        url: '/api/v1/auth/password/forgot',
        payload: { username: who },
      });
      expect(r.statusCode).toBe(202);
    }
    const fr = bodyOf(await env.smtp.next('francoise@example.test'));
    const en = bodyOf(await env.smtp.next('edward@example.test'));
    expect(fr).toContain('Bonjour francoise');
    expect(fr).toContain('Quelqu’un a demandé à réinitialiser le mot de passe');
    expect(fr).not.toContain('Someone asked');
    expect(en).toContain('Hello edward');
    expect(en).toContain('Someone asked to reset the password');
    for (const b of [fr, en]) env.secrets.add(linkIn(b).split('/').pop()!);
  });

  it('an invitation in French, with the date of a password change written the French way', async () => {
    const admin = await enrolUser(env, 'adeline', 'admin');
    const sa = await signIn(env, admin);
    const r = await env.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: sa.headers,
      payload: { username: 'gaston', email: 'gaston@example.test', role: 'member', language: 'fr' },
    });
    expect(r.statusCode, r.body).toBe(201);
    const inv = bodyOf(await env.smtp.next('gaston@example.test'));
    expect(inv).toContain('Un compte a été créé pour vous sur Coffre');
    env.secrets.add(linkIn(inv).split('/').pop()!);

    const pw = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password',
      headers: s.francoise!.headers,
      payload: { currentPassword: u.francoise!.password, newPassword: 'Rhubarbe-Pivoine-Lanterne-42' },
    });
    expect(pw.statusCode, pw.body).toBe(200);
    env.secrets.add('Rhubarbe-Pivoine-Lanterne-42');
    const changed = bodyOf(await env.smtp.next('francoise@example.test'));
    // the fake clock's day, in French words (2 novembre 2026), not an ISO timestamp
    expect(changed).toMatch(/a été modifié le \d{1,2} novembre 2026/);
  });
});
