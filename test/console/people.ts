import type { Page } from 'playwright-core';
import type { Watched } from '../support/browser.js';
import type { RunningAppliance } from './appliance.js';

/**
 * People of a console test on an appliance whose roles need no second factor
 * (`COFFRE_CFG_auth__mfa__requiredRoles: '[]'`): invited with the CLI, enrolled and signed in
 * through the console in a browser of their language. The sign-in flows with second factors are
 * covered by e2e.test.ts.
 */
export type Lang = 'en' | 'fr';

/** the enrolment and sign-in words in each browser language */
const WORDS = {
  en: {
    welcome: 'Welcome to Coffre',
    none: 'None for now',
    password: 'New password',
    repeat: 'Repeat the new password',
    activate: 'Activate my account',
    enrolled: 'You are enrolled',
    next: 'Continue to sign-in',
    signInTitle: 'Sign in',
    signIn: 'Sign in',
    user: 'User name',
    pass: 'Password',
  },
  fr: {
    welcome: 'Bienvenue sur Coffre',
    none: 'Aucun pour l’instant',
    password: 'Nouveau mot de passe',
    repeat: 'Répétez le nouveau mot de passe',
    activate: 'Activer mon compte',
    enrolled: 'Votre compte est activé',
    next: 'Continuer vers la connexion',
    signInTitle: 'Connexion',
    signIn: 'Se connecter',
    user: 'Nom d’utilisateur',
    pass: 'Mot de passe',
  },
};

/** `coffre user invite` on the appliance; returns the enrolment link */
export async function invite(app: RunningAppliance, username: string, role: string): Promise<string> {
  const r = await app.cli([
    'user',
    'invite',
    username,
    '--email',
    `${username}@example.test`,
    '--role',
    role,
    '--json',
  ]);
  if (r.code !== 0) throw new Error(`coffre user invite failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { enrolUrl: string }).enrolUrl;
}

/** a new browser context of that language (and viewport), not signed in */
export async function newPage(chrome: Watched, lang: Lang, viewport?: { width: number; height: number }) {
  const ctx = await chrome.newContext({ locale: lang === 'fr' ? 'fr-FR' : 'en-US' });
  const page = await ctx.newPage();
  if (viewport) await page.setViewportSize(viewport);
  return page;
}

/** enrols from a link without a second factor, choosing `password`; ends on the sign-in page */
export async function enrol(page: Page, link: string, password: string, lang: Lang = 'en'): Promise<void> {
  const w = WORDS[lang];
  await page.goto(link);
  await page.getByRole('heading', { name: w.welcome }).waitFor();
  await page.getByLabel(w.none).check();
  await page.getByLabel(w.password, { exact: true }).fill(password);
  await page.getByLabel(w.repeat).fill(password);
  await page.getByRole('button', { name: w.activate }).click();
  await page.getByRole('heading', { name: w.enrolled }).waitFor();
  await page.getByRole('button', { name: w.next }).click();
  await page.getByRole('heading', { name: w.signInTitle }).waitFor();
}

/** signs in from the sign-in page; returns once the console shows the user's name */
export async function signIn(page: Page, username: string, password: string, lang: Lang = 'en'): Promise<void> {
  const w = WORDS[lang];
  await page.getByLabel(w.user).fill(username);
  await page.getByLabel(w.pass, { exact: true }).fill(password);
  await page.getByRole('button', { name: w.signIn }).click();
  await page.getByTestId('whoami').filter({ hasText: username }).waitFor();
}

/** a new English browser context: enrols from `link` without a second factor, signs in; the signed-in page */
export async function enrolAndSignIn(chrome: Watched, link: string, username: string, password: string): Promise<Page> {
  const page = await newPage(chrome, 'en');
  await enrol(page, link, password);
  await signIn(page, username, password);
  return page;
}
