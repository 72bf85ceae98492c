import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { enrol, invite, newPage, signIn, type Lang } from './people.js';
import { PHONE, axe, overflow } from './checks.js';

/**
 * Accessibility and small screens, in Debian's Chromium against `coffre serve`: axe-core (the
 * npm package, evaluated in the page through playwright-core) runs on the sign-in page and on
 * every screen of the navigation of each role (admin, member, backup operator, auditor, records
 * manager), in English and in French, in the light and the dark colour scheme; any violation of
 * impact "serious" or "critical" fails, named by screen, rule and element. Then each screen at
 * 390 px wide (a phone): the page never scrolls sideways, and every navigation link can be
 * brought into view and opened. Screenshots of the phone views go to test-results/console-a11y/.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console-a11y');
const ROLES = ['admin', 'member', 'backup-operator', 'auditor', 'records-manager'] as const;
const LANGS: Lang[] = ['en', 'fr'];

let app: RunningAppliance;
let chrome: Watched;
const people = new Map<string, { username: string; password: string }>();
let current: Page | undefined;

/** waits until the screen has its title and nothing is loading any more */
async function settle(page: Page): Promise<void> {
  await page.locator('h1').first().waitFor();
  await page
    .locator('.loading')
    .first()
    .waitFor({ state: 'detached', timeout: 10_000 })
    .catch(() => undefined);
}

async function navLinks(page: Page): Promise<string[]> {
  const hrefs = await page
    .locator('nav.sidebar a.nav-link')
    .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href') ?? ''));
  return [...new Set(hrefs)];
}

async function signedIn(role: string, lang: Lang, viewport?: typeof PHONE): Promise<Page> {
  const p = people.get(role)!;
  const page = await newPage(chrome, lang, viewport);
  current = page;
  await page.goto(app.url);
  await signIn(page, p.username, p.password, lang);
  await settle(page);
  return page;
}

describe('accessibility (axe-core) and phone-sized screens', { timeout: 900_000 }, () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance(
      { username: 'ada', email: 'ada@example.test' },
      ['--jurisdiction', 'FR', '--lat', '48.8566', '--lon', '2.3522'],
      { COFFRE_CFG_auth__mfa__requiredRoles: '[]' },
    );
    chrome = await launchChromium(app.ca);
    for (const role of ROLES) {
      const username = role === 'admin' ? 'ada' : role.replace(/-.*/, '') + 'x';
      const link = role === 'admin' ? app.enrolUrl! : await invite(app, username, role);
      const password = `Amber-Quay-${role}-29-herons`;
      const page = await newPage(chrome, 'en');
      await enrol(page, link, password);
      await page.context().close();
      people.set(role, { username, password });
    }
  }, 300_000);
  afterEach(async (c) => {
    if (c.task.result?.state === 'fail' && current)
      await current
        .screenshot({ path: path.join(SHOTS, `failed-${c.task.name.slice(0, 40).replace(/\W+/g, '-')}.png`) })
        .catch(() => undefined);
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('the sign-in page: no serious or critical violation, in both languages and both colour schemes', async () => {
    const found: string[] = [];
    for (const lang of LANGS) {
      const page = await newPage(chrome, lang);
      current = page;
      await page.goto(app.url);
      await page.locator('h1').first().waitFor();
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        found.push(...(await axe(page, `sign-in ${lang} ${scheme}`, { colours: scheme === 'dark' })));
      }
      // the colour rules alone still catch text that cannot be read in the dark scheme
      await page.evaluate(() => {
        const p = document.createElement('p');
        p.textContent = 'unreadable';
        p.style.cssText = 'color:#222;background:#111';
        document.querySelector('main, body')!.append(p);
      });
      expect((await axe(page, 'control', { colours: true })).join('\n')).toContain('color-contrast');
      await page.context().close();
    }
    expect(found).toEqual([]);
  });

  for (const role of ROLES)
    it(`${role}: every screen, in English and French, light and dark`, async () => {
      const found: string[] = [];
      let screens = 0;
      for (const lang of LANGS) {
        const page = await signedIn(role, lang);
        for (const href of await navLinks(page)) {
          await page.goto(`${app.url}/${href}`);
          await settle(page);
          screens++;
          for (const scheme of ['light', 'dark'] as const) {
            await page.emulateMedia({ colorScheme: scheme });
            found.push(...(await axe(page, `${role} ${lang} ${scheme} ${href}`, { colours: scheme === 'dark' })));
          }
        }
        await page.context().close();
      }
      expect(screens).toBeGreaterThanOrEqual(2);
      expect(found).toEqual([]);
    });

  it('at 390 px wide no screen scrolls sideways, and every navigation link can be reached and opened', async () => {
    const problems: string[] = [];
    for (const role of ROLES) {
      const lang: Lang = role === 'member' || role === 'auditor' ? 'fr' : 'en';
      const page = await signedIn(role, lang, PHONE);
      for (const href of await navLinks(page)) {
        // opened from the navigation itself, as a person would: scrolled into view, then tapped
        const link = page.locator(`nav.sidebar a.nav-link[href="${href}"]`).first();
        await link.scrollIntoViewIfNeeded();
        const box = await link.boundingBox();
        if (!box || box.x < 0 || box.x + box.width > PHONE.width + 1)
          problems.push(`${role} ${href}: navigation link not reachable`);
        await link.click();
        await settle(page);
        problems.push(...(await overflow(page, `${role} ${href}`)));
        await page.screenshot({
          path: path.join(SHOTS, `phone-${role}-${lang}-${href.replace(/\W+/g, '-').replace(/^-|-$/g, '')}.png`),
          fullPage: true,
        });
      }
      await page.context().close();
    }
    expect(problems).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
