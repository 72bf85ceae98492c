import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { runCli, startServe } from '../support/cli.js';

/**
 * The CLI as scripts use it (docs/cli.md), as real processes: `init --admin` prints the first
 * admin's enrolment link; `user enrol` completes it; `login` exchanges password + TOTP for a token;
 * `workspace create`, `token create|list|revoke`; local `user invite|list|disable`.
 */
let dir: string;
let server: Awaited<ReturnType<typeof startServe>>;
let env: Record<string, string>;
const secrets: string[] = [];
let adminToken = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-idcli-'));
  const init = await runCli([
    'init',
    '--data-dir',
    path.join(dir, 'data'),
    '--admin',
    'Admin',
    '--admin-email',
    'admin@example.test',
    '--json',
  ]);
  expect(init.code, init.stderr).toBe(0);
  const r = JSON.parse(init.stdout) as { url: string; caFile: string; enrolUrl: string };
  expect(r.enrolUrl).toMatch(/^https:\/\/127\.0\.0\.1:8443\/#\/enrol\/[A-Za-z0-9_-]{43}$/);
  secrets.push(r.enrolUrl.split('/').pop()!);
  (globalThis as Record<string, unknown>).enrolUrl = r.enrolUrl;
  server = await startServe(path.join(dir, 'data'));
  env = { COFFRE_URL: server.url, COFFRE_CA: r.caFile, COFFRE_DATA_DIR: path.join(dir, 'data') };
}, 120_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  await new Promise((r) => server?.child.once('exit', r));
  const logs = server?.logs() ?? '';
  for (const s of secrets) expect(logs.includes(s), 'a secret was logged by serve').toBe(false);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('coffre CLI: identity verbs', () => {
  it(
    'init --admin → user enrol → login (with TOTP) → workspace create → token create/list/revoke',
    { timeout: 240_000 },
    async () => {
      const enrolUrl = (globalThis as Record<string, unknown>).enrolUrl as string;
      const password = 'Granite-Orchard-71x';
      secrets.push(password);
      // wrong stdin usage: no --password-stdin → exit 2
      const bad = await runCli(['user', 'enrol', enrolUrl], { env });
      expect(bad.code).toBe(2);
      const weak = await runCli(['user', 'enrol', enrolUrl, '--password-stdin'], { env, input: 'Password1!\n' });
      expect(weak.code).toBe(2);
      expect(weak.stderr).toMatch(/^PASSWORD_REJECTED/);
      const en = await runCli(['user', 'enrol', enrolUrl, '--password-stdin', '--json'], {
        env,
        input: password + '\n',
      });
      expect(en.code, en.stderr).toBe(0);
      const e = JSON.parse(en.stdout) as { username: string; totp: { secret: string }; recoveryCodes: string[] };
      expect(e.username).toBe('Admin');
      secrets.push(e.totp.secret, ...e.recoveryCodes);
      // the link worked once
      const again = await runCli(['user', 'enrol', enrolUrl, '--password-stdin'], { env, input: password + '\n' });
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^LINK_INVALID/);

      const noCode = await runCli(['login', '--username', 'admin', '--password-stdin'], {
        env,
        input: password + '\n',
      });
      expect(noCode.code).toBe(2);
      expect(noCode.stderr).toMatch(/^MFA_REQUIRED/);
      const code = OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(e.totp.secret),
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
      });
      const li = await runCli(['login', '--username', 'ADMIN', '--password-stdin', '--json'], {
        env,
        input: `${password}\n${code}\n`,
      });
      expect(li.code, li.stderr).toBe(0);
      const tok = JSON.parse(li.stdout) as { token: string; id: string };
      expect(tok.token).toMatch(/^cft_/);
      secrets.push(tok.token);
      const withToken = { ...env, COFFRE_TOKEN: tok.token };
      adminToken = tok.token;

      const ws = await runCli(['workspace', 'create', 'Contrats 2026', '--json'], { env: withToken });
      expect(ws.code, ws.stderr).toBe(0);
      expect(Object.keys(JSON.parse(ws.stdout))).toEqual(['id']);

      const tc = await runCli(['token', 'create', 'backup-script', '--scope', 'self', '--json'], { env: withToken });
      expect(tc.code, tc.stderr).toBe(0);
      const t2 = JSON.parse(tc.stdout) as { token: string; id: string; scopes: string[] };
      secrets.push(t2.token);
      expect(t2.scopes).toEqual(['self']);
      const tl = await runCli(['token', 'list', '--json'], { env: withToken });
      expect(tl.code).toBe(0);
      expect(tl.stdout).not.toContain(t2.token);
      expect((JSON.parse(tl.stdout) as { tokens: unknown[] }).tokens).toHaveLength(2);
      const tr = await runCli(['token', 'revoke', t2.id], { env: withToken });
      expect(tr.code, tr.stderr).toBe(0);
      const dead = await runCli(['token', 'list'], { env: { ...env, COFFRE_TOKEN: t2.token } });
      expect(dead.code).toBe(4);
      expect(dead.stderr).toMatch(/^UNAUTHENTICATED/);
    },
  );

  it('local user invite / list / disable', { timeout: 120_000 }, async () => {
    const inv = await runCli(
      ['user', 'invite', 'bruno', '--email', 'bruno@example.test', '--role', 'member', '--json'],
      { env },
    );
    expect(inv.code, inv.stderr).toBe(0);
    const j = JSON.parse(inv.stdout) as { enrolUrl: string };
    secrets.push(j.enrolUrl.split('/').pop()!);
    const dup = await runCli(['user', 'invite', 'BRUNO', '--email', 'b2@example.test', '--role', 'member'], { env });
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/^USERNAME_TAKEN/);
    const badRole = await runCli(['user', 'invite', 'carla', '--email', 'c@example.test', '--role', 'root'], { env });
    expect(badRole.code).toBe(2);
    const list = await runCli(['user', 'list', '--json'], { env });
    expect(list.code).toBe(0);
    const users = (JSON.parse(list.stdout) as { users: { username: string; state: string }[] }).users;
    expect(users.map((u) => [u.username, u.state])).toEqual([
      ['Admin', 'active'],
      ['bruno', 'invited'],
    ]);
    expect(list.stdout).not.toMatch(/example\.test/);
    const dis = await runCli(['user', 'disable', 'bruno', '--json'], { env });
    expect(dis.code, dis.stderr).toBe(0);
    expect(JSON.parse(dis.stdout).state).toBe('disabled');
  });

  it('login solves the proof of work the appliance asks for after failed sign-ins', { timeout: 120_000 }, async () => {
    const inv = await runCli(
      ['user', 'invite', 'carole', '--email', 'carole@example.test', '--role', 'member', '--json'],
      { env },
    );
    expect(inv.code, inv.stderr).toBe(0);
    const link = (JSON.parse(inv.stdout) as { enrolUrl: string }).enrolUrl;
    secrets.push(link.split('/').pop()!);
    const password = 'Quarry-Lantern-58x';
    secrets.push(password);
    const en = await runCli(['user', 'enrol', link, '--password-stdin', '--json'], { env, input: password + '\n' });
    expect(en.code, en.stderr).toBe(0);
    // every role has a second factor by default: the code is stdin's second line
    const secret = (JSON.parse(en.stdout) as { totp: { secret: string } }).totp.secret;
    secrets.push(secret);
    for (let i = 0; i < 3; i++) {
      const wrong = await runCli(['login', '--username', 'carole', '--password-stdin'], {
        env,
        input: `Wrong-Guess-${i}-x\n`,
      });
      expect(wrong.stderr).toMatch(/^INVALID_CREDENTIALS/);
    }
    const code = OTPAuth.TOTP.generate({
      secret: OTPAuth.Secret.fromBase32(secret),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
    const li = await runCli(['login', '--username', 'carole', '--password-stdin', '--json'], {
      env,
      input: `${password}\n${code}\n`,
    });
    expect(li.code, li.stderr).toBe(0);
    expect(li.stderr).toMatch(/proof of work \(16 bits/);
    const tok = JSON.parse(li.stdout) as { token: string };
    secrets.push(tok.token);
    expect(tok.token).toMatch(/^cft_/);
  });

  it(
    "local user reset and user role: a reset needs the user's own second factor; a lost one needs two admins; a role change",
    { timeout: 240_000 },
    async () => {
      const https = await import('node:https');
      const ca = fs.readFileSync(env.COFFRE_CA!);
      const api = (method: string, p: string, body?: unknown, token?: string) =>
        new Promise<{ status: number; json: any }>((resolve, reject) => {
          const u = new URL(`/api/v1${p}`, env.COFFRE_URL);
          const r = https.request(
            {
              host: u.hostname,
              port: u.port,
              path: u.pathname,
              method,
              ca,
              servername: 'localhost',
              headers: {
                ...(body ? { 'content-type': 'application/json' } : {}),
                ...(token ? { authorization: `Bearer ${token}` } : {}),
              },
            },
            (res) => {
              let t = '';
              res.on('data', (c: Buffer) => (t += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode!, json: t ? JSON.parse(t) : undefined }));
            },
          );
          r.on('error', reject);
          r.end(body ? JSON.stringify(body) : undefined);
        });
      const inv = JSON.parse(
        (
          await runCli(['user', 'invite', 'camille', '--email', 'camille@example.test', '--role', 'member', '--json'], {
            env,
          })
        ).stdout,
      ) as { enrolUrl: string };
      secrets.push(inv.enrolUrl.split('/').pop()!);
      const pw = 'Harbour-Lichen-83q';
      secrets.push(pw);
      const en = JSON.parse(
        (await runCli(['user', 'enrol', inv.enrolUrl, '--password-stdin', '--json'], { env, input: pw + '\n' })).stdout,
      ) as { totp: { secret: string } };
      secrets.push(en.totp.secret);
      const totp = () =>
        OTPAuth.TOTP.generate({
          secret: OTPAuth.Secret.fromBase32(en.totp.secret),
          algorithm: 'SHA1',
          digits: 6,
          period: 30,
        });

      // no mail server: the link comes to the admin, but only the user's own code makes it work
      const rs = await runCli(['user', 'reset', 'camille', '--json'], { env });
      expect(rs.code, rs.stderr).toBe(0);
      const r = JSON.parse(rs.stdout) as { mailed: boolean; resetUrl: string; codeRequired: boolean };
      expect(r).toMatchObject({ mailed: false, codeRequired: true });
      secrets.push(r.resetUrl.split('/').pop()!);
      const newPw = 'Summit-Quarry-64z';
      secrets.push(newPw);
      const noCode = await api('POST', '/auth/password/reset', { token: r.resetUrl, password: newPw });
      expect(noCode.status).toBe(401);
      expect(noCode.json.error.code).toBe('CODE_REQUIRED');
      expect(
        (await api('POST', '/auth/password/reset', { token: r.resetUrl, password: newPw, code: '000000' })).status,
      ).toBe(401);
      expect(
        (await api('POST', '/auth/password/reset', { token: r.resetUrl, password: newPw, code: totp() })).status,
      ).toBe(200);
      // unknown user: exit 2
      expect((await runCli(['user', 'reset', 'nobody-here'], { env })).code).toBe(2);

      // lost both: the first admin requests, the same admin cannot approve, a different one does
      const req1 = await runCli(['user', 'reset', 'camille', '--lost-factor', '--json'], { env });
      expect(req1.code, req1.stderr).toBe(0);
      expect(JSON.parse(req1.stdout).status).toBe('requested');
      const same = await runCli(['user', 'reset', 'camille', '--lost-factor'], { env });
      expect(same.code).toBe(2);
      expect(same.stderr).toMatch(/^SAME_ADMIN/);
      const camille = (await api('GET', '/users', undefined, adminToken)).json.users.find(
        (u: { username: string }) => u.username === 'camille',
      ) as { id: string };
      const ok = await api('POST', `/users/${camille.id}/recovery`, undefined, adminToken);
      expect(ok.status).toBe(200);
      expect(ok.json.status).toBe('approved');
      secrets.push(ok.json.resetUrl.split('/').pop());
      const third = 'Meadow-Glacier-52k';
      secrets.push(third);
      const done = await api('POST', '/auth/password/reset', { token: ok.json.resetUrl, password: third });
      expect(done.status).toBe(200);
      expect(done.json.totp.secret).not.toBe(en.totp.secret);
      expect(done.json.recoveryCodes).toHaveLength(10);
      secrets.push(done.json.totp.secret, ...done.json.recoveryCodes);

      // a role change from the CLI (camille has a second factor: it takes effect at once)
      const role = await runCli(['user', 'role', 'camille', 'auditor', '--json'], { env });
      expect(role.code, role.stderr).toBe(0);
      expect(JSON.parse(role.stdout)).toMatchObject({ role: 'auditor', pendingRole: null });
      const badRole = await runCli(['user', 'role', 'camille', 'root'], { env });
      expect(badRole.code).toBe(2);
    },
  );
});
