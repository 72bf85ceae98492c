import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { runCli, startServe } from '../support/cli.js';

/**
 * The CLI as scripts use it (CONTRACT.md), as real processes: `init --admin` prints the first
 * admin's enrolment link; `user enrol` completes it; `login` exchanges password + TOTP for a token;
 * `workspace create`, `token create|list|revoke`; local `user invite|list|disable`.
 */
let dir: string;
let server: Awaited<ReturnType<typeof startServe>>;
let env: Record<string, string>;
const secrets: string[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-idcli-'));
  const init = await runCli(['init', '--data-dir', path.join(dir, 'data'), '--admin', 'Admin', '--admin-email', 'admin@example.test', '--json']);
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
  it('init --admin → user enrol → login (with TOTP) → workspace create → token create/list/revoke', { timeout: 240_000 }, async () => {
    const enrolUrl = (globalThis as Record<string, unknown>).enrolUrl as string;
    const password = 'Granite-Orchard-71x';
    secrets.push(password);
    // wrong stdin usage: no --password-stdin → exit 2
    const bad = await runCli(['user', 'enrol', enrolUrl], { env });
    expect(bad.code).toBe(2);
    const weak = await runCli(['user', 'enrol', enrolUrl, '--password-stdin'], { env, input: 'Password1!\n' });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/^PASSWORD_REJECTED/);
    const en = await runCli(['user', 'enrol', enrolUrl, '--password-stdin', '--json'], { env, input: password + '\n' });
    expect(en.code, en.stderr).toBe(0);
    const e = JSON.parse(en.stdout) as { username: string; totp: { secret: string }; recoveryCodes: string[] };
    expect(e.username).toBe('Admin');
    secrets.push(e.totp.secret, ...e.recoveryCodes);
    // the link worked once
    const again = await runCli(['user', 'enrol', enrolUrl, '--password-stdin'], { env, input: password + '\n' });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^LINK_INVALID/);

    const noCode = await runCli(['login', '--username', 'admin', '--password-stdin'], { env, input: password + '\n' });
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toMatch(/^MFA_REQUIRED/);
    const code = OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(e.totp.secret), algorithm: 'SHA1', digits: 6, period: 30 });
    const li = await runCli(['login', '--username', 'ADMIN', '--password-stdin', '--json'], { env, input: `${password}\n${code}\n` });
    expect(li.code, li.stderr).toBe(0);
    const tok = JSON.parse(li.stdout) as { token: string; id: string };
    expect(tok.token).toMatch(/^cft_/);
    secrets.push(tok.token);
    const withToken = { ...env, COFFRE_TOKEN: tok.token };

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
  });

  it('local user invite / list / disable', { timeout: 120_000 }, async () => {
    const inv = await runCli(['user', 'invite', 'bruno', '--email', 'bruno@example.test', '--role', 'member', '--json'], { env });
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
    const inv = await runCli(['user', 'invite', 'carole', '--email', 'carole@example.test', '--role', 'member', '--json'], { env });
    expect(inv.code, inv.stderr).toBe(0);
    const link = (JSON.parse(inv.stdout) as { enrolUrl: string }).enrolUrl;
    secrets.push(link.split('/').pop()!);
    const password = 'Quarry-Lantern-58x';
    secrets.push(password);
    const en = await runCli(['user', 'enrol', link, '--password-stdin'], { env, input: password + '\n' });
    expect(en.code, en.stderr).toBe(0);
    for (let i = 0; i < 3; i++) {
      const wrong = await runCli(['login', '--username', 'carole', '--password-stdin'], { env, input: `Wrong-Guess-${i}-x\n` });
      expect(wrong.stderr).toMatch(/^INVALID_CREDENTIALS/);
    }
    const li = await runCli(['login', '--username', 'carole', '--password-stdin', '--json'], { env, input: password + '\n' });
    expect(li.code, li.stderr).toBe(0);
    expect(li.stderr).toMatch(/proof of work \(16 bits/);
    const tok = JSON.parse(li.stdout) as { token: string };
    secrets.push(tok.token);
    expect(tok.token).toMatch(/^cft_/);
  });
});
