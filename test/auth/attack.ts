/**
 * Helpers for the insider-attack suites (admin.test.ts: no mail server; admin-mail.test.ts: a
 * mail server, second factor relaxed for members): requests over real HTTPS, audit and alert rows.
 */
import { expect } from 'vitest';
import { totpNow, type IdentityEnv } from './support.js';
import { uniquePassword, type Signed } from './helpers.js';

export interface Res {
  status: number;
  body: string;
  headers: Record<string, unknown>;
  json(): any;
}
/** one request over HTTPS, as a session (Signed), a bearer token (string) or anonymous */
export async function call(
  env: IdentityEnv,
  method: string,
  path: string,
  o: { as?: Signed | string; json?: unknown; headers?: Record<string, string> } = {},
): Promise<Res> {
  const auth = typeof o.as === 'string' ? { authorization: `Bearer ${o.as}` } : (o.as?.headers ?? {});
  const headers = { ...auth, ...(o.json !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  const r = await env.https(method, `/api/v1${path}`, {
    headers,
    ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}),
  });
  return { status: r.statusCode, body: r.body, headers: r.headers, json: () => JSON.parse(r.body) };
}
export const audit = (env: IdentityEnv, action: string) =>
  env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();
export const alerts = (env: IdentityEnv, kind: string) =>
  env.t.appliance.db.db.selectFrom('alerts').selectAll().where('kind', '=', kind).execute();

/** enrolment and sign-in of whoever holds a link, over HTTPS (password, then the TOTP code) */
export async function takeOver(
  env: IdentityEnv,
  link: string,
  username: string,
): Promise<{ status: number; session?: Signed }> {
  const password = uniquePassword();
  env.secrets.add(password);
  const e = await call(env, 'POST', '/auth/enrol', { json: { token: link, password } });
  if (e.status !== 200) return { status: e.status };
  const secret = e.json().totp?.secret as string | undefined;
  if (secret) env.secrets.add(secret);
  for (const c of (e.json().recoveryCodes as string[] | undefined) ?? []) env.secrets.add(c);
  let l = await call(env, 'POST', '/auth/login', { json: { username, password } });
  expect(l.status, l.body).toBe(200);
  if (l.json().status === 'mfa_required') {
    env.clock.advance(30_000);
    l = await call(env, 'POST', '/auth/login/mfa', {
      json: { challenge: l.json().challenge, code: totpNow(secret!, env.clock) },
    });
    expect(l.status, l.body).toBe(200);
  }
  const cookie = String(l.headers['set-cookie']).split(';')[0]!;
  env.secrets.add(cookie.split('=')[1]!).add(l.json().csrfToken);
  return {
    status: 200,
    session: {
      cookie,
      csrf: l.json().csrfToken,
      headers: { cookie, 'x-csrf-token': l.json().csrfToken, origin: new URL(env.publicUrl).origin },
    },
  };
}
