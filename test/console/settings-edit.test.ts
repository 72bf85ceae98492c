import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrol, newPage, signIn } from './people.js';
import { PHONE, axe, call, catalogue, overflow, shotOnFailure, type Lang } from './checks.js';

/**
 * The admin's editable settings in Debian's Chromium against `coffre serve`: wrong values are
 * refused with a message in words under each field (a limit, a time zone, an e-mail address,
 * a required server; never the schema's pattern), nothing being written; right values are written
 * to config.json (the secret to a file of its own, mode 0600, never sent back), recorded in the
 * audit trail by key only, and the page says the service must restart. In English, then in French
 * on a phone-sized screen; axe-core on both, no sideways scroll at 390 px. Screenshots go to
 * test-results/console-settings/ (not committed).
 */
const SHOTS = path.join(ROOT, 'test-results', 'console-settings');
const ADMIN = { username: 'ada', password: 'Amber-Quay-admin-29-herons' };
const SECRET = 'smtp-Secret-Value-4242';
let app: RunningAppliance;
let chrome: Watched;
let current: Page | undefined;

const configFile = () => JSON.parse(fs.readFileSync(path.join(app.dataDir, 'config.json'), 'utf8'));

async function admin(lang: Lang, viewport?: typeof PHONE): Promise<Page> {
  const page = await newPage(chrome, lang, viewport);
  current = page;
  await page.goto(app.url);
  await signIn(page, ADMIN.username, ADMIN.password, lang);
  await page.goto(`${app.url}/#/settings`);
  await page.locator('[data-group="mail"]').waitFor();
  return page;
}

/** the error shown under a field, by the field's label */
const errorUnder = (page: Page, label: string) =>
  page
    .locator('.field.has-error')
    .filter({ has: page.getByText(label, { exact: true }) })
    .locator('.field-error');

describe('editable settings', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: ADMIN.username, email: 'ada@example.test' }, [], {
      COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    });
    chrome = await launchChromium(app.ca);
    const a = await newPage(chrome, 'en');
    await enrol(a, app.enrolUrl!, ADMIN.password);
    await a.context().close();
  }, 180_000);
  shotOnFailure(SHOTS, () => current);
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('English: refused in words, then saved to config.json, audited, secret write-only, restart said', async () => {
    const t = catalogue('en');
    const page = await admin('en');
    const field = (key: string) => page.getByTestId(`setting-${key}`);
    const before = fs.readFileSync(path.join(app.dataDir, 'config.json'), 'utf8');
    // the environment's override (requiredRoles, set by this test's appliance) is shown, not editable
    await page.getByText(t('settings.edit.overridden')).first().waitFor();
    expect(await page.locator('[data-group="mfa"] input[type="checkbox"]:disabled').count()).toBe(5);
    await field('mail.smtp.host').fill('127.0.0.1');
    await field('mail.smtp.port').fill('70000');
    await field('site.timeZone').fill('Mars/Olympus');
    await field('monitoring.alerts.email.to').fill('it@example.test, not-an-address');
    await page.getByRole('button', { name: t('settings.edit.save') }).click();
    await page.getByText(t('settings.edit.refused')).waitFor();
    expect(await errorUnder(page, t('settings.fields.mail.smtp.port.label')).textContent()).toBe(
      t('settings.rules.maximum', { limit: 65535 }),
    );
    expect(await errorUnder(page, t('settings.fields.site.timeZone.label')).textContent()).toBe(
      t('settings.rules.timeZone'),
    );
    expect(await errorUnder(page, t('settings.fields.monitoring.alerts.email.to.label')).textContent()).toBe(
      t('settings.fields.monitoring.alerts.email.to.format'),
    );
    // words, never the schema's patterns; nothing written
    expect(await page.locator('main').textContent()).not.toMatch(/\^\[|\\s|Expected/);
    expect(fs.readFileSync(path.join(app.dataDir, 'config.json'), 'utf8')).toBe(before);
    const found = [...(await axe(page, 'settings en errors'))];
    await page.screenshot({ path: path.join(SHOTS, 'en-refused.png'), fullPage: true });

    await field('mail.smtp.port').fill('2525');
    await field('site.timeZone').fill('Europe/Paris');
    await field('monitoring.alerts.email.to').fill('it@example.test');
    await field('mail.smtp.password').fill(SECRET);
    await field('auth.password.minLength').fill('12');
    await page.getByRole('button', { name: t('settings.edit.save') }).click();
    await page.getByTestId('restart-needed').waitFor();
    const cfg = configFile();
    expect(cfg.mail.smtp).toMatchObject({ host: '127.0.0.1', port: 2525, passwordFile: 'secrets/smtp-password' });
    expect(cfg.site.timeZone).toBe('Europe/Paris');
    expect(cfg.monitoring.alerts.email.to).toEqual(['it@example.test']);
    expect(cfg.auth.password.minLength).toBe(12);
    const secretFile = path.join(app.dataDir, 'secrets', 'smtp-password');
    expect(fs.readFileSync(secretFile, 'utf8')).toBe(`${SECRET}\n`);
    expect(fs.statSync(secretFile).mode & 0o777).toBe(0o600);
    expect(JSON.stringify(cfg)).not.toContain(SECRET);
    // write-only: the page and the API say only that one is set
    await page.getByText(t('settings.edit.secretSet'), { exact: false }).first().waitFor();
    const settings = await call(page, 'GET', '/settings');
    expect(JSON.stringify(settings.json)).not.toContain(SECRET);
    expect(settings.json.editable.find((f: { key: string }) => f.key === 'mail.smtp.password')).toMatchObject({
      set: true,
    });
    expect(await field('mail.smtp.password').inputValue()).toBe('');
    // the read-only part: labels in words, not configuration keys
    expect(await page.locator('tr[data-key="auth.sessions.idleTimeoutMinutes"] th').textContent()).toBe(
      'Session idle timeout (minutes)',
    );
    // audited by key, never by value
    const db = new Database(path.join(app.dataDir, 'coffre.db'), { readonly: true });
    const rows = db.prepare(`SELECT targets FROM audit_events WHERE action = 'settings.change'`).all() as {
      targets: string;
    }[];
    db.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.targets).toContain('mail.smtp.password');
    expect(rows[0]!.targets).not.toContain(SECRET);
    expect(rows[0]!.targets).not.toContain('it@example.test');
    await page.emulateMedia({ colorScheme: 'dark' });
    found.push(...(await axe(page, 'settings en saved dark')));
    expect(found).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'en-saved.png'), fullPage: true });
    await page.context().close();
    expect(chrome.pageErrors).toEqual([]);
    expect(chrome.cspViolations).toEqual([]);
  });

  it('French, on a phone: labels and errors in French, axe-core clean, no sideways scroll', async () => {
    const t = catalogue('fr');
    const page = await admin('fr', PHONE);
    const field = (key: string) => page.getByTestId(`setting-${key}`);
    await page.getByRole('heading', { name: t('settings.groups.password') }).waitFor();
    // an SMS gateway's port and address: a wrong kind of value and a wrong address, in words
    await field('audit.syslog.port').fill('abc');
    await field('mail.sms.url').fill('ftp://sms.example');
    await page.getByRole('button', { name: t('settings.edit.save') }).click();
    await page.getByText(t('settings.edit.refused')).waitFor();
    expect(await errorUnder(page, t('settings.fields.mail.sms.url.label')).textContent()).toBe(
      t('settings.fields.mail.sms.url.format'),
    );
    expect(await errorUnder(page, t('settings.fields.audit.syslog.port.label')).textContent()).toBe(
      t('settings.rules.type'),
    );
    // the read-only part in French: each key under its French label (a map's entries under the map's)
    expect(await page.locator('tr[data-key="auth.sessions.idleTimeoutMinutes"] th').textContent()).toBe(
      'Délai d’inactivité de la session (minutes)',
    );
    const rows = await page
      .locator('table[data-section] tr[data-key]')
      .evaluateAll((trs) =>
        trs.map((tr) => [tr.getAttribute('data-key')!, tr.querySelector('th')!.textContent!] as const),
      );
    expect(rows.length).toBeGreaterThan(100);
    for (const [key, label] of rows)
      if (!/^(jobs\.schedules|monitoring\.budgets)\./.test(key)) expect(label, key).toBe(t(`settings.labels.${key}`));
    const found = [...(await axe(page, 'settings fr')), ...(await overflow(page, 'settings fr'))];
    await page.emulateMedia({ colorScheme: 'dark' });
    found.push(...(await axe(page, 'settings fr dark', { colours: true })));
    expect(found).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'fr-refused-phone.png'), fullPage: true });
    await page.context().close();
    expect(chrome.pageErrors).toEqual([]);
  });
});
