import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrolAndSignIn as enrolAndSignInAs, invite as inviteWith } from './people.js';

/**
 * Incidents and erasure in Debian's Chromium against `coffre serve`: the admin opens an incident in
 * the register (the GDPR 72-hour clock shows), gives it a public title, posts internal and public
 * updates, adds a corrective action, is refused resolving while it is open, closes it and
 * resolves; members see the banner in their language and acknowledge it; an outsider reads
 * `/status` in English and French without internal detail; a member reports a suspected incident;
 * the admin erases a user through the erase dialog. Screenshots of the register, the banner and
 * the status page in both languages go to test-results/console/. No CSP violation, no script error.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');
const MARK = 'Zq8-internal-console';
let app: RunningAppliance;
let chrome: Watched;
const pages: Page[] = [];
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

async function enrolAndSignIn(link: string, username: string): Promise<{ page: Page; ctx: BrowserContext }> {
  const page = await enrolAndSignInAs(chrome, link, username, `Quiet-Harbour-${pages.length + 1}-74-beacons`);
  pages.push(page);
  return { page, ctx: page.context() };
}

/** the same session in a French browser (the user's language follows the browser) */
async function inFrench(ctx: BrowserContext): Promise<Page> {
  const fr = await chrome.newContext({ locale: 'fr-FR' });
  await fr.addCookies(await ctx.cookies());
  const page = await fr.newPage();
  pages.push(page);
  return page;
}

const invite = (username: string, role: string) => inviteWith(app, username, role);

const settle = (page: Page) =>
  page
    .locator('.loading')
    .first()
    .waitFor({ state: 'detached', timeout: 10_000 })
    .catch(() => undefined);

describe('incidents and erasure in the console, in Chromium', { timeout: 300_000 }, () => {
  let admin: { page: Page; ctx: BrowserContext };
  let mia: { page: Page; ctx: BrowserContext };
  let max: { page: Page; ctx: BrowserContext };
  let incidentUrl = '';

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: 'olga', email: 'olga@example.test' }, [], {
      COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    });
    chrome = await launchChromium(app.ca);
    admin = await enrolAndSignIn(app.enrolUrl!, 'olga');
    mia = await enrolAndSignIn(await invite('mia', 'member'), 'mia');
    max = await enrolAndSignIn(await invite('max', 'member'), 'max');
    await invite('zoe', 'member');
  }, 180_000);
  afterEach(async (c) => {
    if (c.task.result?.state === 'fail')
      for (const [i, p] of pages.entries())
        await shot(p, `failed-incidents-${c.task.name.slice(0, 30).replace(/\W+/g, '-')}-${i}`).catch(() => undefined);
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('the admin opens a personal-data incident: the 72-hour clock runs; public title, updates, an action', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Incidents', exact: true }).click();
    await page.getByRole('heading', { name: 'Incidents', exact: true }).waitFor();
    await page.getByTestId('incident-new').click();
    const d = page.getByRole('dialog', { name: 'Open an incident' });
    await d.getByLabel('Title').fill(`Storage node lost ${MARK}`);
    await d.getByLabel('Severity').selectOption('critical');
    await d.getByLabel('Personal data involved (GDPR breach)').check();
    await d.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: `Storage node lost ${MARK}` }).waitFor();
    incidentUrl = page.url();
    expect(await page.getByTestId('breach-clock').first().textContent()).toMatch(/Running.*left/);
    await page.getByTestId('incident-edit').click();
    const e = page.getByRole('dialog', { name: 'Edit' });
    await e.getByLabel('Public title').fill('Slow document downloads');
    await e.getByLabel('Components').fill('documents, storage');
    await e.getByLabel('Root cause').fill(`disk controller ${MARK}`);
    await e.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Incident saved.').waitFor();
    const f = page.getByTestId('incident-update-form');
    await f.getByLabel('Status').selectOption('identified');
    await f.getByLabel('Internal message (register only)').fill(`controller firmware ${MARK}`);
    await f.getByLabel('Public message, English (optional)').fill('Downloads are slow; we found the cause.');
    await f.getByLabel('Public message, French (optional)').fill('Les téléchargements sont lents ; cause trouvée.');
    await f.getByRole('button', { name: 'Post the update' }).click();
    await page.getByTestId('incident-timeline').getByText('Downloads are slow; we found the cause.').waitFor();
    const a = page.getByTestId('incident-action-form');
    await a.getByLabel('What must be done').fill('Replace the disk controller');
    await a.getByRole('button', { name: 'Add an action' }).click();
    await page.getByTestId('incident-actions').getByText('Replace the disk controller').waitFor();
    // resolving while the action is open is refused, and said so
    await f.getByLabel('Status').selectOption('resolved');
    await f.getByLabel('Internal message (register only)').fill('done?');
    await f.getByRole('button', { name: 'Post the update' }).click();
    await f.getByRole('alert').waitFor();
    expect(await f.getByRole('alert').textContent()).toMatch(/still open/);
    expect(await page.getByTestId('incident-status').textContent()).toBe('Identified');
    await shot(page, 'incidents-detail-en');
    await page.getByRole('link', { name: 'Incidents', exact: true }).first().click();
    await page.getByTestId('incident-list').waitFor();
    await shot(page, 'incidents-register-en');
  });

  it('the register in French', async () => {
    const fr = await inFrench(admin.ctx);
    await fr.goto(incidentUrl);
    await fr.getByRole('heading', { name: `Storage node lost ${MARK}` }).waitFor();
    await fr.getByText('Actions correctives et préventives').waitFor();
    expect(await fr.getByTestId('breach-clock').first().textContent()).toMatch(/En cours/);
    await shot(fr, 'incidents-detail-fr');
    await fr.goto(`${app.url}/#/incidents`);
    await fr.getByTestId('incident-list').waitFor();
    await shot(fr, 'incidents-register-fr');
  });

  it('members see the banner in their language, without internal detail, until they acknowledge it', async () => {
    const { page } = mia;
    await page.reload();
    const banner = page.getByTestId('incident-banner');
    await banner.getByText('Downloads are slow; we found the cause.').waitFor();
    expect(await banner.textContent()).toContain('Slow document downloads');
    expect(await page.content()).not.toContain(MARK);
    await shot(page, 'incidents-banner-en');
    const fr = await inFrench(max.ctx);
    await fr.goto(app.url);
    const frBanner = fr.getByTestId('incident-banner');
    await frBanner.getByText('Les téléchargements sont lents ; cause trouvée.').waitFor();
    await shot(fr, 'incidents-banner-fr');
    await page.getByTestId('incident-ack').click();
    await banner.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByTestId('whoami').waitFor();
    await settle(page);
    expect(await page.getByTestId('incident-banner').count()).toBe(0);
  });

  it('the action closed, a public update; the status page shows it to an outsider in English and French', async () => {
    const { page } = admin;
    await page.goto(incidentUrl);
    await page.getByTestId('incident-action-close').click();
    const d = page.getByRole('dialog', { name: 'Close the action' });
    await d.getByLabel('Outcome').fill('controller replaced');
    await d.getByRole('button', { name: 'Close the action' }).click();
    await page.getByTestId('incident-actions').getByText('Closed').waitFor();
    const f = page.getByTestId('incident-update-form');
    await f.getByLabel('Status').selectOption('monitoring');
    await f.getByLabel('Internal message (register only)').fill(`watching ${MARK}`);
    await f.getByLabel('Public message, English (optional)').fill('A fix is in place; we are watching.');
    await f.getByLabel('Public message, French (optional)').fill('Un correctif est en place ; surveillance.');
    await f.getByRole('button', { name: 'Post the update' }).click();
    await page.getByTestId('incident-timeline').getByText('A fix is in place; we are watching.').waitFor();
    const en = await (await chrome.newContext()).newPage();
    pages.push(en);
    await en.goto(`${app.url}/status`);
    await en.getByRole('heading', { name: 'Current incidents' }).waitFor();
    const body = await en.content();
    expect(body).toContain('Slow document downloads');
    expect(body).toContain('A fix is in place; we are watching.');
    expect(body).not.toContain(MARK);
    expect(body).not.toContain('Storage node lost');
    await shot(en, 'status-page-en');
    const fr = await (await chrome.newContext({ locale: 'fr-FR' })).newPage();
    pages.push(fr);
    await fr.goto(`${app.url}/status`);
    await fr.getByRole('heading', { name: 'Incidents en cours' }).waitFor();
    expect(await fr.content()).toContain('Un correctif est en place ; surveillance.');
    await shot(fr, 'status-page-fr');
    // the page's switch
    await fr.getByRole('link', { name: 'English' }).click();
    await fr.getByRole('heading', { name: 'Current incidents' }).waitFor();
  });

  it('a member reports a suspected incident: a draft in the register', async () => {
    const { page } = mia;
    await page.getByRole('link', { name: 'Report an incident' }).click();
    const f = page.getByTestId('incident-report-form');
    await f.getByLabel('What happened, in a few words').fill('Lost my laptop on the train');
    await f.getByLabel('Details').fill('This morning, around 8:00.');
    await f.getByRole('button', { name: 'Send the report' }).click();
    await page.getByText('Report sent').waitFor();
    await shot(page, 'incidents-report-en');
    await admin.page.goto(`${app.url}/#/incidents`);
    await admin.page.getByTestId('incident-list').getByText('Lost my laptop on the train').waitFor();
  });

  it('the erase dialog states the consequence, wants the name typed, and erases', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    const row = page.getByRole('row').filter({ hasText: 'zoe' });
    await row.getByTestId('erase-user').click();
    const d = page.getByRole('dialog', { name: 'Erase zoe' });
    await d.getByTestId('erase-consequence').waitFor();
    expect(await d.getByTestId('erase-consequence').textContent()).toMatch(/cannot|destroyed/);
    // The button waits for the erasure plan (fetched when the dialog opens) and for the typed name;
    // Preact renders after the input event, so each state is polled for, never read once.
    await d.getByRole('status').waitFor({ state: 'hidden' });
    const submit = d.getByRole('button', { name: 'Erase for good' });
    const confirm = d.getByLabel('Type zoe to confirm');
    expect(await submit.isDisabled()).toBe(true);
    await confirm.fill('zoe');
    await expect.poll(() => submit.isDisabled()).toBe(false);
    await confirm.fill('zoé');
    await expect.poll(() => submit.isDisabled()).toBe(true);
    await confirm.fill('zoe');
    await expect.poll(() => submit.isDisabled()).toBe(false);
    await shot(page, 'erase-dialog-en');
    await submit.click();
    await page.getByText('zoe was erased').waitFor();
    await d.waitFor({ state: 'hidden' });
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'zoe' }).count()).toBe(0);
    await page.getByText('erased user').first().waitFor();
    await shot(page, 'erase-done-en');
  });

  it('no CSP violation and no script error during the whole run', () => {
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
