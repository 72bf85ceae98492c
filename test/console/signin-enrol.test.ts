import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { CLI, ROOT, startServe } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { Authenticator } from './authenticator.js';

/**
 * An upgraded install with no mail server: members enrolled while their role needed no second
 * factor have none, and no mail server can send them a code. After the password, sign-in hands
 * them an authenticator to add, bound to that one challenge. This file drives both clients that
 * show that step, against `coffre serve` over HTTPS:
 * - the console in Debian's Chromium: the secret as text and as a QR code (the server's SVG), in
 *   French and in English; leaving the step keeps nothing; the first code signs in, and the
 *   authenticator is the member's factor from then on;
 * - `coffre login`, a real process: the otpauth URI and the secret on stderr, then the code read
 *   from standard input once they are shown; the token on stdout.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');

let app: RunningAppliance;
let serve: Awaited<ReturnType<typeof startServe>> | undefined;
let chrome: Watched;
let clientEnv: Record<string, string>;
const pages: Page[] = [];

/** a member invited locally and enrolled through the API without a second factor (their role needed none then) */
async function memberWithoutFactor(username: string, password: string): Promise<void> {
  const link = await app.invite(username, 'member');
  const r = await fetchJson('/auth/enrol', { token: link.split('/').pop(), password });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.totp).toBeUndefined();
}

/** one anonymous POST over HTTPS, trusting only the appliance's CA */
function fetchJson(p: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const u = new URL(`/api/v1${p}`, app.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      u,
      { method: 'POST', ca: app.ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let s = '';
        res.on('data', (d: Buffer) => (s += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(s) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

async function passwordStep(page: Page, username: string, password: string, submit: string): Promise<void> {
  await page.goto(`${app.url}/#/login`);
  await page.locator('input[name="username"]').fill(username);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: submit, exact: true }).click();
}

/** the secret shown as text, and checks that the QR code image is drawn */
async function shownSecret(page: Page): Promise<string> {
  const secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s+/g, '');
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  expect(await page.locator('.qr img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(
    true,
  );
  return secret;
}

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  // before the upgrade: only admins needed a second factor; no mail server (the default install)
  app = await startAppliance({ username: 'ada', email: 'ada@example.test' }, [], {
    COFFRE_CFG_auth__mfa__requiredRoles: '["admin"]',
  });
  const caFile = path.join(tempDir('coffre-signin-enrol-'), 'ca.pem');
  fs.writeFileSync(caFile, app.ca);
  clientEnv = { COFFRE_URL: app.url, COFFRE_CA: caFile };
  await memberWithoutFactor('nina', 'Copper-Lantern-58-otters');
  await memberWithoutFactor('omar', 'Basalt-Meadow-27-finches');
  await memberWithoutFactor('paul', 'Quartz-Harbour-44-plovers');
  // the upgrade: the same data dir served with the defaults (a second factor for every role)
  await app.stop();
  serve = await startServe(app.dataDir, Number(new URL(app.url).port));
  chrome = await launchChromium(app.ca);
}, 180_000);

afterAll(async () => {
  await chrome?.close();
  if (serve && serve.child.exitCode === null) {
    serve.child.removeAllListeners('exit'); // startServe's own listener rejects on exit
    const exited = new Promise((r) => serve!.child.once('exit', r));
    serve.child.kill('SIGTERM');
    await exited;
  }
  for (const s of ['Copper-Lantern-58-otters', 'Basalt-Meadow-27-finches', 'Quartz-Harbour-44-plovers'])
    expect(serve?.logs().includes(s), 'a password was logged').toBe(false);
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail')
    for (const [i, p] of pages.entries()) await shot(p, `failed-signin-enrol-${i}`).catch(() => undefined);
});

describe('no mail server, no second factor yet: the console shows the authenticator to add at sign-in', () => {
  it('French then English: the secret as text and QR code; leaving keeps nothing; the first code signs in and the factor stays', async () => {
    const fr = await (await chrome.newContext({ locale: 'fr-FR' })).newPage();
    pages.push(fr);
    await passwordStep(fr, 'nina', 'Copper-Lantern-58-otters', 'Se connecter');
    await fr.getByRole('heading', { name: 'Ajoutez votre second facteur' }).waitFor();
    const abandoned = await shownSecret(fr);
    await shot(fr, '35-signin-enrol-fr');
    // she leaves: nothing became her factor, the next sign-in hands a new authenticator
    await fr.getByRole('button', { name: 'Recommencer' }).click();
    await fr.getByRole('heading', { name: 'Connexion' }).waitFor();

    const en = await (await chrome.newContext()).newPage();
    pages.push(en);
    await passwordStep(en, 'nina', 'Copper-Lantern-58-otters', 'Sign in');
    await en.getByRole('heading', { name: 'Add your second factor' }).waitFor();
    // a recovery code makes no sense here: there is none yet
    expect(await en.getByRole('button', { name: 'Use a recovery code' }).count()).toBe(0);
    const secret = await shownSecret(en);
    expect(secret).not.toBe(abandoned);
    await shot(en, '35-signin-enrol-en');
    const app1 = new Authenticator(secret);
    // a code from the abandoned authenticator is refused
    await en.getByLabel('One-time code').fill(await new Authenticator(abandoned).code());
    await en.getByRole('button', { name: 'Confirm and sign in' }).click();
    await en.getByRole('alert').waitFor();
    await en.getByRole('heading', { name: 'Add your second factor' }).waitFor();
    await en.getByLabel('One-time code').fill(await app1.code());
    await en.getByRole('button', { name: 'Confirm and sign in' }).click();
    await en.getByTestId('whoami').filter({ hasText: 'nina' }).waitFor();

    // from now on it is her second factor: the ordinary step, with that authenticator's codes
    const again = await (await chrome.newContext()).newPage();
    pages.push(again);
    await passwordStep(again, 'nina', 'Copper-Lantern-58-otters', 'Sign in');
    await again.getByRole('heading', { name: 'Second factor' }).waitFor();
    expect(await again.getByTestId('totp-secret').count()).toBe(0);
    await again.getByLabel('One-time code').fill(await app1.code());
    await again.getByRole('button', { name: 'Verify and sign in' }).click();
    await again.getByTestId('whoami').filter({ hasText: 'nina' }).waitFor();
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  }, 180_000);
});

/** `coffre login` as a person runs it: the password first, the code only once the secret is shown */
function login(username: string): {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
} {
  const child = spawn(process.execPath, [CLI, 'login', '--username', username, '--password-stdin', '--json'], {
    env: { ...process.env, ...clientEnv },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: new Promise((r) => child.once('close', r)),
  };
}

async function waitFor(what: () => RegExpExecArray | null, ms = 30_000): Promise<RegExpExecArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = what();
    if (m) return m;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('no mail server, no second factor yet: coffre login prints the authenticator and then asks for its code', () => {
  it('otpauth URI and secret on stderr, the code from standard input, the token on stdout; the factor stays', async () => {
    const l = login('omar');
    l.child.stdin!.write('Basalt-Meadow-27-finches\n');
    const m = await waitFor(() =>
      /(otpauth:\/\/totp\/\S+)[\s\S]*type the secret: ([A-Z2-7]+)[\s\S]*enter the code/.exec(l.stderr()),
    );
    expect(new URL(m[1]!).searchParams.get('secret')).toBe(m[2]);
    expect(l.stdout()).toBe('');
    const app1 = new Authenticator(m[2]!);
    l.child.stdin!.end(`${await app1.code()}\n`);
    expect(await l.exit, l.stderr()).toBe(0);
    const tok = JSON.parse(l.stdout()) as { token: string };
    expect(tok.token).toMatch(/^cft_/);
    expect(l.stdout()).not.toContain(m[2]!);

    // the next login asks for a code of that authenticator, and hands no new secret
    const next = login('omar');
    next.child.stdin!.end(`Basalt-Meadow-27-finches\n${await app1.code()}\n`);
    expect(await next.exit, next.stderr()).toBe(0);
    expect(next.stderr()).not.toMatch(/otpauth/);
    expect((JSON.parse(next.stdout()) as { token: string }).token).toMatch(/^cft_/);
  }, 120_000);

  it('no code after the secret (standard input ends): exit 2 MFA_ENROL_REQUIRED, no token, nothing set up', async () => {
    const l = login('paul');
    l.child.stdin!.end('Quartz-Harbour-44-plovers\n');
    expect(await l.exit).toBe(2);
    expect(l.stderr()).toMatch(/otpauth:\/\/totp\//);
    expect(l.stderr()).toMatch(/^MFA_ENROL_REQUIRED: /m);
    expect(l.stdout()).not.toMatch(/cft_/);
    // still no factor: the next sign-in hands a new authenticator again
    const next = login('paul');
    next.child.stdin!.end('Quartz-Harbour-44-plovers\n');
    expect(await next.exit).toBe(2);
    const secrets = [l.stderr(), next.stderr()].map((e) => /type the secret: ([A-Z2-7]+)/.exec(e)?.[1]);
    expect(secrets[1]).toMatch(/^[A-Z2-7]{32}$/);
    expect(secrets[1]).not.toBe(secrets[0]);
  }, 60_000);
});
