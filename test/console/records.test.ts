import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrolAndSignIn as enrolAndSignInAs, invite as inviteWith } from './people.js';

/**
 * The records manager's page in Chromium against `coffre serve`: a retention change asked by one
 * records manager is approved by another from the page, then listed as a policy; the page is the
 * records manager's home, in English and in French; a member has no such entry. A member downloads
 * a deposit receipt, the export of the workspace they own and the export of their own deposits, in
 * English and in French, each checked with tar, sha256sum and openssl. Screenshots go to
 * test-results/console/.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');
let app: RunningAppliance;
let chrome: Watched;
let n = 0;

const invite = (username: string, role: string) => inviteWith(app, username, role);
const enrolAndSignIn = (link: string, username: string) =>
  enrolAndSignInAs(chrome, link, username, `Amber-Meadow-${++n}-58-compass`);

/** an API call from the signed-in page, with its session cookie and CSRF token */
async function call(page: Page, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ([m, url, b]) => {
      const me = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken?: string };
      const r = await fetch(`/api/v1${url}`, {
        method: m as string,
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken ?? '' },
        ...(b === undefined ? {} : { body: JSON.stringify(b) }),
      });
      return { status: r.status, json: await r.json().catch(() => null) };
    },
    [method, p, body] as const,
  );
}

describe('console records page in Chromium', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: 'olga', email: 'olga@example.test' }, [], {
      COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    });
    chrome = await launchChromium(app.ca);
  }, 120_000);
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('a second records manager approves a retention change from the page; French too; members have no entry', async () => {
    const member = await enrolAndSignIn(await invite('mona', 'member'), 'mona');
    const ws = await call(member, 'POST', '/workspaces', { name: 'Paie' });
    expect(ws.status).toBe(201);
    expect(await member.getByRole('link', { name: 'Records' }).count()).toBe(0);
    // a member checks a document's integrity: the signed report is kept for the records managers
    const doc = await member.evaluate(async (wsId) => {
      const me = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken?: string };
      const r = await fetch(`/api/v1/workspaces/${wsId}/documents`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'content-disposition': "attachment; filename*=UTF-8''bulletin.txt",
          'x-csrf-token': me.csrfToken ?? '',
        },
        body: 'bulletin de paie',
      });
      return ((await r.json()) as { id: string }).id;
    }, ws.json.id as string);
    expect((await call(member, 'POST', `/documents/${doc}/verify`, {})).json.ok).toBe(true);
    // the version's deposit receipt, from its Versions tab: the files an auditor checks with openssl
    await member.goto(`${app.url}/#/workspaces/${ws.json.id as string}/documents/${doc}`);
    await member.getByRole('tab', { name: 'Versions' }).click();
    const [dl] = await Promise.all([
      member.waitForEvent('download'),
      member.getByRole('button', { name: 'Deposit receipt of bulletin.txt version 1 (signed, for openssl)' }).click(),
    ]);
    expect(dl.suggestedFilename()).toBe(`receipt-${doc}-v1.tar`);
    const tarDir = fs.mkdtempSync(path.join(app.dataDir, '..', 'receipt-'));
    await dl.saveAs(path.join(tarDir, 'r.tar'));
    execFileSync('tar', ['-xf', 'r.tar'], { cwd: tarDir });
    const base = path.join(tarDir, `receipt-${doc}-v1`);
    execFileSync('openssl', ['x509', '-in', 'seal-cert.pem', '-pubkey', '-noout', '-out', 'pub.pem'], { cwd: base });
    const verified = execFileSync(
      'openssl',
      ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', `receipt-${doc}-v1.json.sig`, `receipt-${doc}-v1.json`],
      { cwd: base, encoding: 'utf8' },
    );
    expect(verified).toContain('Verified OK');

    // the owner's export of the workspace, and the member's own deposits: each checks with stock tools alone
    const archive = async (testId: string, name: RegExp, file: string) => {
      const [got] = await Promise.all([member.waitForEvent('download'), member.getByRole('link', { name }).click()]);
      expect(await member.getByTestId(testId).count()).toBe(1);
      expect(got.suggestedFilename()).toBe(file);
      const dir = fs.mkdtempSync(path.join(app.dataDir, '..', 'export-'));
      await got.saveAs(path.join(dir, file));
      execFileSync('tar', ['-xf', file], { cwd: dir });
      execFileSync('sha256sum', ['-c', '--quiet', 'manifest.sha256'], { cwd: dir });
      execFileSync('openssl', ['x509', '-in', 'seal-cert.pem', '-pubkey', '-noout', '-out', 'pub.pem'], { cwd: dir });
      const ok = execFileSync(
        'openssl',
        ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'manifest.json.sig', 'manifest.json'],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(ok).toContain('Verified OK');
      return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { versions: number };
    };
    await member.goto(`${app.url}/#/workspaces/${ws.json.id as string}`);
    const wsExport = await archive(
      'export-workspace',
      /^Export the workspace$/,
      `coffre-export-${ws.json.id as string}.tar`,
    );
    expect(wsExport.versions).toBe(1);
    const me = ((await call(member, 'GET', '/auth/me')).json as { user: { id: string } }).user;
    await member.goto(`${app.url}/#/account`);
    const mine = await archive('export-deposits', /^Export my deposits$/, `coffre-export-user-${me.id}.tar`);
    expect(mine.versions).toBe(1);
    expect((await call(member, 'PUT', '/auth/me/language', { language: 'fr' })).status).toBe(200);
    await member.reload();
    await member.getByRole('link', { name: 'Exporter mes dépôts' }).waitFor();
    await member.goto(`${app.url}/#/workspaces/${ws.json.id as string}`);
    await member.getByRole('link', { name: /Exporter l’espace/ }).waitFor();

    const rhea = await enrolAndSignIn(await invite('rhea', 'records-manager'), 'rhea');
    await rhea.getByRole('heading', { name: 'Records', exact: true }).waitFor(); // the records manager's home
    const asked = await call(rhea, 'POST', '/records/requests', {
      kind: 'retention',
      scope: { kind: 'workspace', id: ws.json.id },
      minDays: 3650,
    });
    expect(asked.status, JSON.stringify(asked.json)).toBe(201);

    const rita = await enrolAndSignIn(await invite('rita', 'records-manager'), 'rita');
    await rita.getByRole('heading', { name: 'Records', exact: true }).waitFor();
    const row = rita.locator(`tr[data-request="${asked.json.id}"]`);
    await row.getByText('keep for at least 3650 days').waitFor();
    await rita.getByText('No retention policy.').waitFor();
    await rita.getByText('No document has been destroyed.').waitFor();
    const reports = rita.getByRole('table', { name: 'Integrity reports' });
    await reports
      .locator('tr', { hasText: `document ${doc.slice(0, 8)}…` })
      .getByText('intact')
      .waitFor();
    await rita.screenshot({ path: path.join(SHOTS, 'records-request.png'), fullPage: true });
    await row.getByRole('button', { name: 'Approve' }).click();
    await rita.getByRole('dialog').getByRole('button', { name: 'Approve' }).click();
    await rita.getByText('Change approved.').waitFor();
    await rita.getByText('No change is waiting for approval.').waitFor();
    const policies = rita.getByRole('table', { name: 'Retention policies' });
    await policies.getByText('3650').waitFor();
    await policies.getByText('asked by rhea, approved by rita').waitFor();

    // French, once the records manager chose it
    expect((await call(rhea, 'PUT', '/auth/me/language', { language: 'fr' })).status).toBe(200);
    await rhea.reload();
    await rhea.getByRole('heading', { name: 'Archives', exact: true }).waitFor();
    await rhea.getByRole('table', { name: 'Politiques de conservation' }).getByText('3650').waitFor();
    await rhea.getByText('Aucun document n’a été détruit.').waitFor();
    await rhea.screenshot({ path: path.join(SHOTS, 'records-fr.png'), fullPage: true });
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
