import { expect } from 'vitest';
import type * as LightMyRequest from 'light-my-request';
import type { IdentityEnv } from './support.js';
import { cookieOf, totpNow } from './support.js';

export interface Enrolled {
  id: string;
  username: string;
  password: string;
  email: string;
  totp?: string;
  recovery?: string[];
}

let n = 0;
export const uniquePassword = () => `Tangerine-Ladder-${++n}-${Math.random().toString(36).slice(2, 8)}X`;

/** invite (local, like `coffre user invite`) then enrol over HTTP with a fresh password */
export async function enrolUser(
  env: IdentityEnv,
  username: string,
  role: string,
  body: Record<string, unknown> = {},
): Promise<Enrolled> {
  const email = `${username}@example.test`;
  const inv = await env.t.appliance.identity.accounts.invite({ username, email, role }, 'local:test', {});
  env.secrets.add(inv.enrolUrl.split('/').pop()!);
  const password = uniquePassword();
  env.secrets.add(password);
  const r = await env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/enrol',
    payload: { token: inv.enrolUrl, password, ...body },
  });
  expect(r.statusCode, r.body).toBe(200);
  const j = r.json() as { totp?: { secret: string }; recoveryCodes?: string[] };
  if (j.totp) env.secrets.add(j.totp.secret);
  for (const c of j.recoveryCodes ?? []) env.secrets.add(c);
  return {
    id: inv.user.id,
    username,
    password,
    email,
    ...(j.totp ? { totp: j.totp.secret } : {}),
    ...(j.recoveryCodes ? { recovery: j.recoveryCodes } : {}),
  };
}

export interface Signed {
  cookie: string;
  csrf: string;
  headers: Record<string, string>;
}

/** full sign-in (password + TOTP when enrolled) → cookie session */
export async function signIn(env: IdentityEnv, u: Enrolled, ip = '198.51.100.7'): Promise<Signed> {
  const r = await env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    remoteAddress: ip,
    payload: { username: u.username, password: u.password },
  });
  expect(r.statusCode, r.body).toBe(200);
  let j = r.json() as { status: string; challenge?: string; csrfToken?: string };
  let setCookie = r.headers['set-cookie'];
  if (j.status === 'mfa_required') {
    expect(setCookie).toBeUndefined();
    env.clock.advance(30_000); // a TOTP code works once: use the next time step
    const code = totpNow(u.totp!, env.clock);
    env.secrets.add(j.challenge!);
    const m = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login/mfa',
      remoteAddress: ip,
      payload: { challenge: j.challenge, code },
    });
    expect(m.statusCode, m.body).toBe(200);
    j = m.json();
    setCookie = m.headers['set-cookie'];
  }
  const cookie = cookieOf(setCookie);
  env.secrets.add(cookie.split('=')[1]!);
  env.secrets.add(j.csrfToken!);
  return {
    cookie,
    csrf: j.csrfToken!,
    headers: { cookie, 'x-csrf-token': j.csrfToken!, origin: new URL(env.publicUrl).origin },
  };
}

/** the answer to a password step, carried through the second factor when one is asked (a TOTP code) */
export async function finishLogin(
  env: IdentityEnv,
  u: Enrolled,
  first: LightMyRequest.Response,
  ip = '198.51.100.7',
): Promise<LightMyRequest.Response> {
  const j = first.json() as { status: string; challenge?: string };
  if (first.statusCode !== 200 || j.status !== 'mfa_required') return first;
  env.secrets.add(j.challenge!);
  env.clock.advance(30_000); // a TOTP code works once: use the next time step
  return env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login/mfa',
    remoteAddress: ip,
    payload: { challenge: j.challenge, code: totpNow(u.totp!, env.clock) },
  });
}

/** API token through `issue: token` (what `coffre login` does) */
export async function tokenFor(env: IdentityEnv, u: Enrolled, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await env.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username: u.username, password: u.password, issue: 'token', ...extra },
  });
  expect(r.statusCode, r.body).toBe(200);
  let j = r.json() as { status: string; challenge?: string; token?: string };
  if (j.status === 'mfa_required') {
    env.clock.advance(30_000);
    const m = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login/mfa',
      payload: { challenge: j.challenge, code: totpNow(u.totp!, env.clock) },
    });
    expect(m.statusCode, m.body).toBe(200);
    j = m.json();
  }
  env.secrets.add(j.token!);
  return j.token!;
}

export type HttpsAnswer = { statusCode: number; body: string; headers: Record<string, unknown> };

/** a JSON POST to /api/v1 over real HTTPS from a given loopback address */
export const postFrom = (
  env: IdentityEnv,
  p: string,
  body: unknown,
  from: string,
  headers: Record<string, string> = {},
): Promise<HttpsAnswer> =>
  env.https('POST', `/api/v1${p}`, {
    from,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
