import * as OTPAuth from 'otpauth';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type Watched } from '../support/browser.js';
import { runCli } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';

/**
 * Invariant 1 through the wire: a random marker put in a document's name, tags, description and in
 * search text, through the client CLI and through the console in Chromium (upload, search, the
 * member picker), is absent from the server's stdout and stderr (its request log), the audit trail
 * and every file of the data dir.
 */
let s: RunningAppliance;
let chrome: Watched;
let dir: string;
let clientEnv: Record<string, string>;
let workspace = '';
const username = 'mallory';
const password = `Tangerine-Ladder-${crypto.randomBytes(4).toString('hex')}X`;
const marker = `MRK${crypto.randomBytes(10).toString('hex')}`;
const cliOutput: string[] = [];

let totpSecret = '';
beforeAll(async () => {
  // the console's requests must come from the appliance's public URL: init and serve on one port
  s = await startAppliance({ username: 'alice', email: 'alice@example.test' });
  chrome = await launchChromium(s.ca);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-marker-'));
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, s.ca);
  clientEnv = { COFFRE_URL: s.url, COFFRE_CA: caFile };
  const invite = await s.cli([
    'user',
    'invite',
    username,
    '--email',
    `${username}@example.test`,
    '--role',
    'member',
    '--json',
  ]);
  expect(invite.code, invite.stderr).toBe(0);
  // every role has a second factor: the member enrols an authenticator and signs in with its code
  const enrolled = JSON.parse(
    await coffre(
      ['user', 'enrol', (JSON.parse(invite.stdout) as { enrolUrl: string }).enrolUrl, '--password-stdin', '--json'],
      `${password}\n`,
    ),
  ) as { totp: { secret: string } };
  totpSecret = enrolled.totp.secret;
  const code = OTPAuth.TOTP.generate({
    secret: OTPAuth.Secret.fromBase32(totpSecret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  });
  clientEnv.COFFRE_TOKEN = (
    JSON.parse(
      await coffre(['login', '--username', username, '--password-stdin', '--json'], `${password}\n${code}\n`),
    ) as { token: string }
  ).token;
  workspace = (JSON.parse(await coffre(['workspace', 'create', 'Board', '--json'])) as { id: string }).id;
}, 120_000);
afterAll(async () => {
  await chrome?.close();
  await s?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const coffre = async (args: string[], input?: string) => {
  const r = await runCli(args, { env: clientEnv, ...(input !== undefined ? { input } : {}) });
  expect(r.code, `coffre ${args.join(' ')}: ${r.stderr}`).toBe(0);
  cliOutput.push(r.stdout, r.stderr);
  return r.stdout;
};

/** Every file under `d`, recursively. */
function files(d: string): string[] {
  return fs
    .readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : e.isFile() ? [path.join(d, e.name)] : []));
}
const needles = (m: string) =>
  [m, m.toLowerCase(), m.toUpperCase()].flatMap((x) => [
    Buffer.from(x, 'utf8'),
    Buffer.from(x, 'utf16le'),
    Buffer.from(encodeURIComponent(`${x} `).slice(0, -3)),
  ]);
const holds = (b: Buffer, m: string) => needles(m).some((n) => b.includes(n));

describe('no confidential field in a URL that is logged (CLI and console)', () => {
  it('the CLI sends name, tags and description in headers and searches in a body', async () => {
    const file = path.join(dir, 'upload.bin');
    fs.writeFileSync(file, 'the content');
    const put = JSON.parse(
      await coffre([
        'doc',
        'put',
        '--workspace',
        workspace,
        file,
        '--name',
        `Dossier ${marker} é.pdf`,
        '--tag',
        `tag-${marker}`,
        'other',
        '--description',
        `description ${marker}`,
        '--json',
      ]),
    ) as { id: string };
    const byName = JSON.parse(
      await coffre(['doc', 'list', '--workspace', workspace, '--q', marker.toUpperCase(), '--json']), // search is by word prefix, in any case (docs/formats.md)
    ) as { documents: { id: string; name: string; tags: string[] }[] };
    expect(byName.documents).toEqual([
      expect.objectContaining({ id: put.id, name: `Dossier ${marker} é.pdf`, tags: [`tag-${marker}`, 'other'] }),
    ]);
    const byTag = JSON.parse(
      await coffre(['doc', 'list', '--workspace', workspace, '--tag', `TAG-${marker}`, '--json']),
    ) as { documents: { id: string }[] };
    expect(byTag.documents.map((d) => d.id)).toEqual([put.id]);
    const none = JSON.parse(
      await coffre(['doc', 'list', '--workspace', workspace, '--q', `${marker}-absent`, '--json']),
    ) as { documents: unknown[] };
    expect(none.documents).toEqual([]);
  });

  it('the console uploads with the name in a header, searches in a body and looks people up', async () => {
    const ctx = await chrome.newContext();
    const page = await ctx.newPage();
    const sent: string[] = [];
    page.on('request', (r) => sent.push(r.url()));
    await page.goto(s.url);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Second factor' }).waitFor();
    // a code works once: the CLI's sign-in used this time step's, so the next step's (accepted, window 1)
    await page.getByLabel('One-time code').fill(
      OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(totpSecret),
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
        timestamp: Date.now() + 30_000,
      }),
    );
    await page.getByRole('button', { name: 'Verify and sign in' }).click();
    await page.getByTestId('whoami').filter({ hasText: username }).waitFor();

    await page.goto(`${s.url}/#/workspaces/${workspace}`);
    await page.getByRole('heading', { name: 'Board' }).waitFor();
    const name = `Console ${marker} ü.txt`;
    const file = path.join(dir, name);
    fs.writeFileSync(file, 'console content');
    await page.locator('input[type="file"]').setInputFiles(file);
    await page
      .locator('.upload-row[data-status="done"], .upload-row[data-status="failed"]')
      .waitFor({ timeout: 30_000 });
    expect(
      await page.locator('.upload-row').getAttribute('data-status'),
      (await page.locator('.upload-row').textContent()) ?? '',
    ).toBe('done');
    await page.locator(`tr[data-doc="${name}"]`).waitFor();

    await page.getByLabel('Search documents by name').fill(`console ${marker.toLowerCase()}`);
    await page.getByLabel('Search documents by name').press('Enter');
    await page.getByRole('button', { name: 'Clear search' }).waitFor();
    await page.waitForFunction((n) => {
      const rows = [...document.querySelectorAll('tr[data-doc]')];
      return rows.length === 1 && rows[0]!.getAttribute('data-doc') === n;
    }, name);

    // the member picker: its text goes to the appliance in the query string (not logged)
    await page.goto(`${s.url}/#/workspaces/${workspace}/members`);
    await page.getByLabel('Find a person').fill(`${marker.toLowerCase()}x`);
    await page.waitForTimeout(1500);

    // no request URL carried the name or the search text (the picker is the one known exception)
    const leaky = sent.filter((u) => holds(Buffer.from(u), marker) && !u.includes('/member-candidates?'));
    expect(leaky).toEqual([]);
    await ctx.close();
    expect(chrome.pageErrors).toEqual([]);
  });

  it('the marker is in no log line, no audit record and no file of the data dir', async () => {
    // the audit trail, as an auditor exports it
    const exported = path.join(dir, 'audit.jsonl');
    const ex = await s.cli(['audit', 'export', '--from', '2000-01-01', '--to', '2100-01-01', '--out', exported]);
    const auditText = fs.existsSync(exported) ? fs.readFileSync(exported) : Buffer.from(ex.stdout);
    expect(auditText.length, ex.stderr).toBeGreaterThan(0);
    expect(auditText.toString()).toMatch(/doc\.search/);
    expect(holds(auditText, marker)).toBe(false);
    // the server's own output while it ran: every request was logged, none with the marker
    const logs = s.logs();
    expect(logs).toMatch(/"route":"\/api\/v1\/workspaces\/:workspaceId\/documents\/search"/);
    expect(holds(Buffer.from(logs), marker)).toBe(false);
    // every file of the data dir, while running (WAL) and after a clean stop
    const hits = () => files(s.dataDir).filter((f) => holds(fs.readFileSync(f), marker));
    expect(hits()).toEqual([]);
    await s.stop();
    expect(holds(Buffer.from(s.logs()), marker)).toBe(false);
    expect(hits()).toEqual([]);
    // the scan can find it: the CLI printed the names it listed
    expect(holds(Buffer.from(cliOutput.join('\n')), marker)).toBe(true);
  });
});
