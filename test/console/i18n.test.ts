import fs from 'node:fs';
import path from 'node:path';
import * as OTPAuth from 'otpauth';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';

/**
 * The console in French and in English (docs/i18n.md), in Debian's Chromium against a real
 * appliance (`coffre init --admin`, `coffre serve`, HTTPS). A French browser gets the French
 * console before sign-in and the appliance's own messages in French; the admin enrols and signs in
 * in French, switches to English on My account (stored on the appliance: it survives a reload),
 * and every screen is photographed in both languages (test-results/console-i18n/, not committed).
 * Consequential actions ask first in a dialog that states the consequence: a role change for a
 * user without a second factor says so, and cancelling changes nothing.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console-i18n');

let app: RunningAppliance;
let chrome: Watched;
let ctx: BrowserContext;
let page: Page;
let secret = '';
let lastStep = -1;
const password = 'Lanterne-Verte-Quai-2026';

async function code(): Promise<string> {
  let step = Math.floor(Date.now() / 30_000);
  if (step <= lastStep) {
    await new Promise((r) => setTimeout(r, (lastStep + 1) * 30_000 - Date.now() + 200));
    step = Math.floor(Date.now() / 30_000);
  }
  lastStep = step;
  return new OTPAuth.TOTP({
    secret: OTPAuth.Secret.fromBase32(secret),
    digits: 6,
    period: 30,
    algorithm: 'SHA1',
  }).generate({ timestamp: step * 30_000 + 1000 });
}
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** every screen of the side navigation, photographed; returns the titles seen */
async function everyScreen(lang: string): Promise<string[]> {
  const links = await page
    .locator('nav.sidebar a.nav-link')
    .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href') ?? ''));
  const titles: string[] = [];
  for (const href of [...new Set(links)]) {
    await page.goto(`${app.url}/${href}`);
    const title = page.locator('h1.page-title');
    await title.waitFor();
    await page
      .locator('.loading')
      .first()
      .waitFor({ state: 'detached', timeout: 10_000 })
      .catch(() => undefined);
    titles.push((await title.textContent()) ?? '');
    await shot(`${lang}-${href.replace(/\W+/g, '-').replace(/^-|-$/g, '')}`);
  }
  return titles;
}

describe('the console in French and English', () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: 'alice', email: 'alice@example.test' });
    chrome = await launchChromium(app.ca);
    ctx = await chrome.newContext({ locale: 'fr-FR' });
    page = await ctx.newPage();
  }, 120_000);
  afterEach(async (c) => {
    if (c.task.result?.state === 'fail')
      await shot(`failed-${c.task.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => undefined);
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('a French browser gets the sign-in page in French, and the appliance refuses in French', async () => {
    await page.goto(app.url);
    await page.getByRole('heading', { name: 'Connexion' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('fr');
    await shot('fr-01-sign-in');
    await page.getByLabel('Nom d’utilisateur').fill('alice');
    await page.getByLabel('Mot de passe', { exact: true }).fill('pas-son-mot-de-passe');
    await page.getByRole('button', { name: 'Se connecter' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    // the server's message for INVALID_CREDENTIALS, in French (the console sends Accept-Language: fr)
    expect(await alert.textContent()).toMatch(/nom d’utilisateur ou mot de passe incorrect/i);
    await shot('fr-02-sign-in-refused');
  });

  it('the admin enrols, sets up the authenticator and signs in, all in French', async () => {
    await page.goto(app.enrolUrl!);
    await page.getByRole('heading', { name: 'Bienvenue sur Coffre' }).waitFor();
    await page.getByLabel('Nouveau mot de passe', { exact: true }).fill(password);
    await page.getByLabel('Répétez le nouveau mot de passe').fill(password);
    await shot('fr-03-enrol');
    await page.getByRole('button', { name: 'Activer mon compte' }).click();
    await page.getByRole('heading', { name: 'Configurez votre application d’authentification' }).waitFor();
    secret = ((await page.getByTestId('totp-secret').textContent()) ?? '').replace(/\s+/g, '');
    await page.getByRole('button', { name: 'Je l’ai ajouté — suivant' }).click();
    await page.getByRole('button', { name: 'Continuer vers la connexion' }).click();
    await page.getByLabel('Nom d’utilisateur').fill('alice');
    await page.getByLabel('Mot de passe', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.getByRole('heading', { name: 'Second facteur' }).waitFor();
    await page.getByLabel('Code à usage unique').fill(await code());
    await page.getByRole('button', { name: 'Vérifier et se connecter' }).click();
    await page.getByRole('heading', { name: 'Utilisateurs', exact: true }).waitFor();
    await page.getByRole('navigation', { name: 'Principal' }).getByRole('link', { name: 'Mon compte' }).waitFor();
  });

  it('changing the role of a user without a second factor says so first; cancelling changes nothing', async () => {
    await page.getByRole('button', { name: 'Inviter un utilisateur' }).click();
    const dialog = page.getByRole('dialog', { name: 'Inviter un utilisateur' });
    await dialog.getByLabel('Nom d’utilisateur').fill('carla');
    await dialog.getByLabel('Adresse e-mail').fill('carla@example.test');
    await dialog.getByRole('button', { name: 'Inviter', exact: true }).click();
    await page.getByText('Lien d’activation pour carla').waitFor();
    const row = page.locator('tr[data-user="carla"]');
    await row.getByLabel('Rôle de carla').selectOption('admin');
    const confirm = page.getByRole('dialog', { name: 'Donner le rôle administrateur informatique à carla ?' });
    await confirm
      .getByText(
        'carla n’a pas de second facteur : il doit en configurer un avant de pouvoir se connecter en tant que administrateur informatique.',
        { exact: false },
      )
      .waitFor();
    await shot('fr-04-role-change-dialog');
    await confirm.getByRole('button', { name: 'Annuler' }).click();
    await confirm.waitFor({ state: 'hidden' });
    // nothing changed: the appliance still has carla as a member, and no role is pending
    const users = await page.evaluate(
      async () =>
        (await (await fetch('/api/v1/users', { credentials: 'same-origin' })).json()) as {
          users: { username: string; role: string; pendingRole: string | null }[];
        },
    );
    expect(users.users.find((u) => u.username === 'carla')).toMatchObject({ role: 'member', pendingRole: null });
    await expect.poll(() => row.getByLabel('Rôle de carla').inputValue()).toBe('member');
    // disabling asks too
    await row.getByRole('button', { name: 'Désactiver' }).click();
    const off = page.getByRole('dialog', { name: 'Désactiver carla ?' });
    await off.getByText(/déconnecté partout immédiatement/).waitFor();
    await off.getByRole('button', { name: 'Annuler' }).click();
    await off.waitFor({ state: 'hidden' });
    expect(await row.textContent()).toMatch(/invité/);
  });

  it('every screen in French', async () => {
    const titles = await everyScreen('fr');
    expect(titles).toEqual(
      expect.arrayContaining([
        'Utilisateurs',
        'Revues d’accès',
        'Clés',
        'Paramètres',
        'Mon compte',
        'Espaces de travail',
      ]),
    );
  });

  it('the admin switches to English on My account: stored on the appliance, it survives a reload', async () => {
    await page.goto(`${app.url}/#/account`);
    await page.getByRole('heading', { name: 'Mon compte' }).waitFor();
    await page.getByLabel('Langue de la console et de vos e-mails').selectOption('en');
    await page.getByRole('heading', { name: 'My account' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
    await page.reload();
    await page.getByRole('heading', { name: 'My account' }).waitFor();
    expect(await page.getByLabel('Language of the console and of your e-mails').inputValue()).toBe('en');
    // the appliance's own messages follow the stored choice, whatever the browser says
    const r = await page.evaluate(
      async () =>
        (await (
          await fetch('/api/v1/workspaces/nope/documents', {
            credentials: 'same-origin',
            headers: { 'accept-language': 'fr' },
          })
        ).json()) as { error: { message: string } },
    );
    expect(r.error.message).not.toMatch(/introuvable/);
  });

  it('in English, the role change is confirmed: it waits for carla’s second factor', async () => {
    await page.goto(`${app.url}/#/users`);
    const row = page.locator('tr[data-user="carla"]');
    await row.getByLabel('Role of carla').selectOption('admin');
    const confirm = page.getByRole('dialog', { name: 'Make carla admin?' });
    await confirm
      .getByText('carla has no second factor: they must set one up before they can sign in as admin.', { exact: false })
      .waitFor();
    await shot('en-04-role-change-dialog');
    await confirm.getByRole('button', { name: 'Change the role to admin' }).click();
    await row.getByText('admin once a second factor is set up').waitFor();
  });

  it('every screen in English', async () => {
    const titles = await everyScreen('en');
    expect(titles).toEqual(
      expect.arrayContaining(['Users', 'Access reviews', 'Keys', 'Settings', 'My account', 'Workspaces']),
    );
  });

  it('reported no CSP violation and no script error', () => {
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
