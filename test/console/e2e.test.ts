import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { startAppliance, type RunningAppliance } from './appliance.js';

/**
 * The console end to end: a real appliance (`coffre init` + `coffre serve` over HTTPS) and Debian's
 * Chromium. Screenshots of each main screen go to test-results/console/ (not committed).
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');

let app: RunningAppliance;
let chrome: Watched;

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

describe('web console in Chromium', () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: 'alice', email: 'alice@example.test' });
    chrome = await launchChromium(app.ca);
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  it('shows the sign-in page from the appliance origin', async () => {
    const ctx: BrowserContext = await chrome.newContext();
    const page = await ctx.newPage();
    const res = await page.goto(app.url);
    expect(res?.status()).toBe(200);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').waitFor();
    await page.getByLabel('Password').waitFor();
    await shot(page, '01-sign-in');
    await ctx.close();
  });

  it('gives an obsolete browser the 426 page instead of the console', async () => {
    const ctx = await chrome.newContext({ userAgent: 'Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko' });
    const page = await ctx.newPage();
    const res = await page.goto(app.url);
    expect(res?.status()).toBe(426);
    expect(await page.textContent('h1')).toMatch(/not supported/);
    await ctx.close();
  });

  it('reported no CSP violation and no script error during the run', () => {
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
