import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrol, invite as inviteWith, newPage, signIn, type Lang } from './people.js';

/**
 * The console's operations section in Chromium against `coffre serve`: the dashboard (components,
 * last backup per target, open alerts, charts), the alerts page (acknowledge, resolve, history) and
 * the jobs page (runs, outcome, error), as an admin; an auditor reads without acting; a member is
 * told the page is not for them (never an empty page). Screenshots go to test-results/console/.
 * Second factors are not required in this appliance: the sign-in flows are covered by e2e.test.ts.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');
let app: RunningAppliance;
let chrome: Watched;
const pages: Page[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** enrols from a link without a second factor and signs in, in a browser of that language; returns the signed-in page */
async function enrolAndSignIn(link: string, username: string, lang: Lang = 'en'): Promise<Page> {
  const page = await newPage(chrome, lang);
  pages.push(page);
  const password = `Quiet-Harbour-${pages.length}-74-lanterns`;
  await enrol(page, link, password, lang);
  await signIn(page, username, password, lang);
  return page;
}
const invite = (username: string, role: string) => inviteWith(app, username, role);

describe('console operations section in Chromium', { timeout: 240_000 }, () => {
  let admin: Page;

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance(
      { username: 'olga', email: 'olga@example.test' },
      ['--jurisdiction', 'FR', '--lat', '48.8566', '--lon', '2.3522'],
      {
        COFFRE_CFG_auth__mfa__requiredRoles: '[]',
        COFFRE_CFG_monitoring__sampleIntervalMs: '1000',
        COFFRE_CFG_backup__retryBaseMs: '50',
      },
    );
    chrome = await launchChromium(app.ca);
    // a target that vanished: a failed backup run, its alert, and a job run with an error
    const dir = fs.mkdtempSync(path.join(app.dataDir, '..', 'lyon-'));
    const add = await app.cli([
      'backup',
      'target',
      'add',
      'lyon',
      '--type',
      'path',
      '--url',
      `file://${dir}`,
      '--jurisdiction',
      'FR',
      '--lat',
      '45.764',
      '--lon',
      '4.8357',
    ]);
    expect(add.code, add.stderr).toBe(0);
    fs.rmSync(dir, { recursive: true });
    expect((await app.cli(['backup', 'run'])).code).not.toBe(0);
  }, 240_000);
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail')
      for (const [i, p] of pages.entries()) await shot(p, `failed-operations-${i}`).catch(() => undefined);
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('dashboard: each component up, the target never backed up, the open backup alert, charts with data', async () => {
    admin = await enrolAndSignIn(app.enrolUrl!, 'olga');
    await admin.getByRole('link', { name: 'Dashboard' }).click();
    await admin.getByRole('heading', { name: 'Operations', level: 1 }).waitFor();
    for (const c of ['database', 'keys', 'storage', 'audit-export'])
      await admin.locator(`[data-component="${c}"][data-ok="true"]`).waitFor();
    await admin.locator('[data-target="lyon"]').filter({ hasText: 'never backed up' }).waitFor();
    await admin.locator('tr[data-kind="backup.failed"][data-state="open"]').first().waitFor();
    // a few samples later the charts have lines
    await admin.waitForTimeout(2500);
    // a chart needs two samples (CPU is a delta): on a loaded machine the second can come late; re-read until it has one
    for (let i = 0; i < 20 && !(await admin.locator('[data-chart="cpu"] polyline').count()); i++) {
      await admin.getByRole('button', { name: i % 2 ? '1 h' : '24 h' }).click();
      await admin.waitForTimeout(1500);
    }
    await admin.getByRole('button', { name: '1 h' }).click();
    // a flat line has no height: attached, not visible
    for (const c of ['cpu', 'memory', 'disk'])
      await admin.locator(`[data-chart="${c}"] polyline`).first().waitFor({ state: 'attached' });
    await shot(admin, 'ops-01-dashboard');
    await admin.getByRole('button', { name: '30 days' }).click();
    await admin.getByRole('button', { name: '30 days', pressed: true }).waitFor();
  });

  it('alerts: the admin acknowledges, then resolves; the alert moves to the history with who did it', async () => {
    await admin.getByRole('link', { name: 'Alerts', exact: true }).click();
    await admin.getByRole('heading', { name: 'Alerts' }).waitFor();
    const row = admin.locator('tr[data-kind="backup.failed"]').first();
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await admin.locator('tr[data-kind="backup.failed"][data-state="acknowledged"]').waitFor();
    await shot(admin, 'ops-02-alerts-acknowledged');
    await admin.locator('tr[data-kind="backup.failed"]').first().getByRole('button', { name: 'Resolve' }).click();
    await admin.getByText('Alert resolved.').waitFor();
    await admin.getByRole('button', { name: 'History' }).click();
    const done = admin.locator('tr[data-kind="backup.failed"][data-state="resolved"]').first();
    await done.waitFor();
    expect(await done.textContent()).toMatch(/acknowledged by user:.*resolved by user:/s);
    await shot(admin, 'ops-03-alerts-history');
  });

  it('jobs: the failed backup run with its error; the other jobs and their schedules', async () => {
    await admin.getByRole('link', { name: 'Jobs', exact: true }).click();
    // the page's title; its table's card is titled "Jobs" too, once the jobs have loaded
    await admin.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
    const run = admin.locator('tr[data-outcome="failed"]').filter({ hasText: 'backup' }).first();
    await run.waitFor();
    expect(await run.textContent()).toMatch(/TARGET_UNREACHABLE/);
    await admin.locator('tr[data-job="monitoring.compact"]').waitFor();
    await shot(admin, 'ops-04-jobs');
  });

  it('an auditor reads the alerts without buttons to act; a member is told the page is not for them', async () => {
    const auditor = await enrolAndSignIn(await invite('aude', 'auditor'), 'aude');
    await auditor.goto(`${app.url}/#/operations/alerts`);
    await auditor.getByRole('heading', { name: 'Alerts' }).waitFor();
    await auditor.getByText('Read-only for your role.').waitFor();
    expect(await auditor.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    const member = await enrolAndSignIn(await invite('max', 'member'), 'max');
    expect(await member.getByRole('link', { name: 'Dashboard' }).count()).toBe(0);
    await member.goto(`${app.url}/#/operations`);
    await member.getByTestId('denied').waitFor();
    expect(await member.getByRole('alert').or(member.getByRole('status')).first().textContent()).toMatch(/Not allowed/);
    await shot(member, 'ops-05-member-denied');
  });

  it('in French: the dashboard, the alerts (read-only) and the jobs, with French dates and numbers', async () => {
    const fr = await enrolAndSignIn(await invite('aurelie', 'auditor'), 'aurelie', 'fr');
    await fr.getByRole('link', { name: 'Tableau de bord' }).click();
    await fr.getByRole('heading', { name: 'Exploitation', level: 1 }).waitFor();
    await fr.locator('[data-component="database"]').filter({ hasText: 'Base de données' }).waitFor();
    await fr.locator('[data-target="lyon"]').filter({ hasText: 'jamais sauvegardée' }).waitFor();
    await fr.getByRole('button', { name: '30 jours' }).click();
    await fr.getByRole('button', { name: '30 jours', pressed: true }).waitFor();
    // chart readings use a decimal comma, never a point
    await fr.locator('[data-chart="memory"] .chart-legend li').first().waitFor();
    expect(await fr.locator('[data-chart="memory"] .chart-legend').textContent()).toMatch(/\d,\d+ %/);
    await shot(fr, 'ops-fr-01-dashboard');
    await fr.getByRole('link', { name: 'Alertes', exact: true }).click();
    await fr.getByRole('heading', { name: 'Alertes' }).waitFor();
    await fr.getByText('Lecture seule pour votre rôle.').waitFor();
    await fr.getByRole('button', { name: 'Historique' }).click();
    const done = fr.locator('tr[data-kind="backup.failed"][data-state="resolved"]').first();
    await done.waitFor();
    expect(await done.textContent()).toMatch(/prise en charge par user:.*résolue par user:/s);
    // dates in French: a month name or a day/month/year date, not the English order
    expect(await done.locator('time').first().textContent()).not.toMatch(/AM|PM/);
    await shot(fr, 'ops-fr-02-alerts');
    await fr.getByRole('link', { name: 'Tâches', exact: true }).click();
    await fr.getByRole('heading', { name: 'Tâches', level: 1 }).waitFor();
    const run = fr.locator('tr[data-outcome="failed"]').filter({ hasText: 'backup' }).first();
    await run.waitFor();
    expect(await run.textContent()).toMatch(/échouée/);
    expect(await run.textContent()).toMatch(/ligne de commande/);
    await fr
      .locator('tr[data-job="monitoring.compact"]')
      .filter({ hasText: /jamais exécutée|réussie|échouée/ })
      .waitFor();
    await shot(fr, 'ops-fr-03-jobs');
    // the auditor checks the whole document store on demand and reads the signed report
    await fr.getByRole('link', { name: 'Journal d’audit' }).click();
    await fr.getByRole('button', { name: 'Vérifier les documents maintenant' }).click();
    const report = fr.getByTestId('integrity-report');
    await report.waitFor({ timeout: 60_000 });
    expect(await report.getAttribute('data-ok')).toBe('true');
    await report.getByText('Tous les documents sont intègres').waitFor();
    await report.getByText('signé', { exact: true }).waitFor();
    expect(await report.getByTestId('integrity-certificate').textContent()).toMatch(/^[0-9a-f:]{40,}$/i);
    await shot(fr, 'ops-fr-04-integrity');
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
