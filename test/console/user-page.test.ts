import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrol, invite, newPage, signIn } from './people.js';
import { PHONE, axe, call, catalogue, overflow, shotOnFailure, type Lang } from './checks.js';

/**
 * An IT admin's page for one user, in Debian's Chromium against `coffre serve`: the person's role,
 * state, second factor, sessions by device and address, API tokens, and workspaces as need-to-know
 * allows (the name of a workspace the admin shares, only the id of one he does not). From the
 * page, through confirmation dialogs that say the consequence: a token revoked (it stops working),
 * a session ended (that browser is signed out), the role changed, the account disabled and
 * enabled. In English, then in French on a phone-sized screen; axe-core on both, no sideways
 * scroll at 390 px. Screenshots go to test-results/console-user/ (not committed).
 */
const SHOTS = path.join(ROOT, 'test-results', 'console-user');
let app: RunningAppliance;
let chrome: Watched;
let current: Page | undefined;
const ADMIN = { username: 'ada', password: 'Amber-Quay-admin-29-herons' };
const MEMBER = { username: 'bruno', password: 'Amber-Quay-member-29-herons' };
let bruno: Page;
let brunoId = '';
let brunoToken = '';

async function admin(lang: Lang, viewport?: typeof PHONE): Promise<Page> {
  const page = await newPage(chrome, lang, viewport);
  current = page;
  await page.goto(app.url);
  await signIn(page, ADMIN.username, ADMIN.password, lang);
  return page;
}

const stillValid = (page: Page, auth?: string) =>
  page.evaluate(
    async (a) =>
      (
        await fetch('/api/v1/auth/me', {
          credentials: a ? 'omit' : 'same-origin',
          headers: a ? { authorization: `Bearer ${a}` } : {},
        })
      ).status,
    auth,
  );

describe('an admin’s page for one user', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: ADMIN.username, email: 'ada@example.test' }, [], {
      COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    });
    chrome = await launchChromium(app.ca);
    const a = await newPage(chrome, 'en');
    await enrol(a, app.enrolUrl!, ADMIN.password);
    await a.context().close();
    // bruno: signed in (a session), an API token, a workspace of his own and one shared with ada
    bruno = await newPage(chrome, 'en');
    await enrol(bruno, await invite(app, MEMBER.username, 'member'), MEMBER.password);
    await signIn(bruno, MEMBER.username, MEMBER.password);
    expect((await call(bruno, 'POST', '/workspaces', { name: 'Secret Ward' })).status).toBe(201);
    const tk = await call(bruno, 'POST', '/auth/tokens', { name: 'nightly-sync' });
    expect(tk.status, JSON.stringify(tk.json)).toBe(201);
    brunoToken = tk.json.token as string;
    const page = await admin('en');
    brunoId = (await call(page, 'GET', '/users')).json.users.find((u: { username: string }) => u.username === 'bruno')
      .id as string;
    const ws = await call(page, 'POST', '/workspaces', { name: 'Admin Room' });
    expect(ws.status).toBe(201);
    expect((await call(page, 'PUT', `/workspaces/${ws.json.id}/members/${brunoId}`, { role: 'editor' })).status).toBe(
      200,
    );
    await page.context().close();
  }, 180_000);
  shotOnFailure(SHOTS, () => current);
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('English: what the admin sees, and each action through its dialog', async () => {
    const t = catalogue('en');
    const page = await admin('en');
    await page.goto(`${app.url}/#/users`);
    await page.locator('tr[data-user="bruno"] a[data-testid="user-page"]').click();
    await page.getByRole('heading', { name: 'bruno', level: 1 }).waitFor();
    await page.getByRole('cell', { name: 'nightly-sync' }).waitFor();
    // workspaces: the shared one by name, the other by id only, and the page says why
    await expect.poll(() => page.getByTestId('ws-note').textContent()).toBe(t('user.workspaces.note', { count: 2 }));
    await page.getByRole('cell', { name: 'Admin Room' }).waitFor();
    expect(await page.locator('main').textContent()).not.toContain('Secret Ward');
    expect(await page.locator('tr[data-workspace]').count()).toBe(2);
    // sessions by device and address; second factor and role in words
    const device = t('account.sessions.browserOn', { browser: 'Chrome', os: 'Linux' });
    const session = page.locator('tr[data-session]').filter({ hasText: device });
    await session.filter({ hasText: '127.0.0.1' }).waitFor();
    expect(await page.getByTestId('user-factor').textContent()).toBe(t('account.mfa.none'));
    expect(await page.getByTestId('user-role').textContent()).toContain(t('common.roles.member'));
    const found = [...(await axe(page, 'user en light'))];
    await page.emulateMedia({ colorScheme: 'dark' });
    found.push(...(await axe(page, 'user en dark', { colours: true })));
    await page.emulateMedia({ colorScheme: 'light' });
    expect(found).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'en-user.png'), fullPage: true });

    const dialog = (title: string) => page.getByRole('dialog', { name: title });
    // revoke the token: the dialog says scripts are refused from now on; then the token is dead
    await page
      .locator('tr[data-token]')
      .getByRole('button', { name: t('user.tokens.revoke') })
      .click();
    const names = { username: 'bruno', name: 'nightly-sync' };
    const d1 = dialog(t('user.tokens.revokeTitle', names));
    await d1.getByText(t('user.tokens.revokeBody', names)).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'en-revoke-dialog.png') });
    await d1.getByRole('button', { name: t('user.tokens.revokeConfirm') }).click();
    await page.getByText(t('user.tokens.none')).waitFor();
    expect(await stillValid(bruno, brunoToken)).toBe(401);

    // end bruno's browser session: his next request is refused
    expect(await stillValid(bruno)).toBe(200);
    await session.getByRole('button', { name: t('user.sessions.end') }).click();
    const d2 = dialog(t('user.sessions.endTitle', { username: 'bruno', device }));
    await d2.getByText(t('user.sessions.endBody', { username: 'bruno', device, address: '127.0.0.1' })).waitFor();
    await d2.getByRole('button', { name: t('user.sessions.endConfirm') }).click();
    await page.getByText(t('user.sessions.none')).waitFor();
    expect(await stillValid(bruno)).toBe(401);

    // role: a dialog with the consequence; cancelled leaves it, confirmed changes it
    const role = { username: 'bruno', role: t('common.roles.auditor'), current: t('common.roles.member') };
    await page.locator('#user-role-select').selectOption('auditor');
    const d3 = dialog(t('admin.role.title', role));
    await d3.getByText(t('admin.role.body', role)).waitFor();
    await d3.getByRole('button', { name: t('admin.role.confirm', role) }).click();
    await expect.poll(() => page.getByTestId('user-role').textContent()).toContain(t('common.roles.auditor'));

    // disable (asks first), then enable
    await page.getByRole('button', { name: t('admin.actions.disable'), exact: true }).click();
    const d4 = dialog(t('admin.disable.title', { username: 'bruno' }));
    await d4.getByText(t('admin.disable.body', { username: 'bruno' })).waitFor();
    await d4.getByRole('button', { name: t('admin.disable.confirm') }).click();
    await expect.poll(() => page.getByTestId('user-state').textContent()).toBe(t('admin.states.disabled'));
    await page.getByRole('button', { name: t('admin.actions.enable'), exact: true }).click();
    await expect.poll(() => page.getByTestId('user-state').textContent()).toBe(t('admin.states.active'));
    await page.context().close();
    expect(chrome.pageErrors).toEqual([]);
    expect(chrome.cspViolations).toEqual([]);
  });

  it('French, on a phone: the same page in French, axe-core clean, no sideways scroll at 390 px', async () => {
    const t = catalogue('fr');
    const page = await admin('fr', PHONE);
    await page.goto(`${app.url}/#/users/${brunoId}`);
    await page.getByRole('heading', { name: 'bruno', level: 1 }).waitFor();
    await page.getByRole('heading', { name: t('user.workspaces.title') }).waitFor();
    await expect.poll(() => page.getByTestId('ws-note').textContent()).toBe(t('user.workspaces.note', { count: 2 }));
    await page.getByText(t('user.factor.noReset')).waitFor();
    await page.getByText(t('user.tokens.none')).waitFor();
    expect(await page.locator('main').textContent()).not.toContain('Secret Ward');
    const found = [...(await axe(page, 'user fr light')), ...(await overflow(page, 'user fr'))];
    await page.emulateMedia({ colorScheme: 'dark' });
    found.push(...(await axe(page, 'user fr dark', { colours: true })));
    expect(found).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'fr-user-phone.png'), fullPage: true });
    await page.context().close();
    expect(chrome.pageErrors).toEqual([]);
  });
});
