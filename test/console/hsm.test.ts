import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { acquireLibrary, releaseLibrary } from '../../src/keys/pkcs11/library.js';
import { buildApp } from '../../src/main.js';
import { listen, type App } from '../../src/http/index.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { freePort } from './appliance.js';

/**
 * The console when the HSM goes away (invariant 3, fail closed): a member's pages answer with a
 * clear "hardware security module is unavailable" message instead of a blank or a stack, and work
 * again once the token is back, without reloading the appliance. The appliance runs in this
 * process (so the token can be pulled from under the PKCS#11 module, as test/keys does) and is
 * driven over HTTPS by Chromium.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');

describe('console: HSM unavailable', () => {
  let t: TestAppliance;
  let app: App;
  let url: string;
  let chrome: Watched;
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    // the public URL names the port: the browser's Origin must match it (S5)
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    t = await createTestAppliance({ env: { COFFRE_PUBLIC_URL: url } });
    app = await buildApp(t.appliance, true);
    await listen(app, '127.0.0.1', port, createLogger({ level: 'silent', destination: 'stderr' }));
    chrome = await launchChromium(fs.readFileSync(path.join(t.dataDir, 'tls', 'cert.pem'), 'utf8'));
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.close();
    await t?.close();
  });

  it('shows a clear error while the token is missing and recovers once it is back', async () => {
    // a member who creates a workspace and uploads a document through the console
    const username = 'hsm-member';
    const password = 'Quartz-Meadow-47-herons';
    const inv = await t.appliance.identity.accounts.invite(
      { username, email: `${username}@example.test`, role: 'member' },
      'local:test',
      {},
    );
    const enrolled = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/enrol',
      payload: { token: inv.enrolUrl, password },
    });
    expect(enrolled.statusCode).toBe(200);
    // every role requires a second factor by default: the member set up an authenticator
    const secret = (enrolled.json() as { totp: { secret: string } }).totp.secret;
    const ctx = await chrome.newContext();
    const page = await ctx.newPage();
    await page.goto(`${url}/#/workspaces`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Second factor' }).waitFor();
    await page.getByLabel('One-time code').fill(
      OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(secret),
        digits: 6,
        period: 30,
        algorithm: 'SHA1',
        timestamp: Date.now(),
      }),
    );
    await page.getByRole('button', { name: 'Verify and sign in' }).click();
    await page.getByRole('button', { name: 'New workspace' }).click();
    await page.getByRole('dialog', { name: 'New workspace' }).getByLabel('Name').fill('Archives');
    await page.getByRole('dialog', { name: 'New workspace' }).getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Archives' }).waitFor();
    const file = path.join(tempDir(), 'contract.pdf');
    fs.writeFileSync(file, crypto.randomBytes(4096));
    await page.locator('input[type="file"]').setInputFiles(file);
    await page.locator('tr[data-doc="contract.pdf"]').waitFor();

    // the token disappears the way a removed device does
    const { tokenDir, module, conf } = t.token;
    const moved = `${tokenDir}.away`;
    const lib = acquireLibrary(module, conf);
    try {
      fs.renameSync(tokenDir, moved);
      fs.mkdirSync(tokenDir);
      lib.finalize();
      lib.initialize();
      t.appliance.keys.dataKeys.wipeCache();

      await page.getByRole('link', { name: 'Workspaces', exact: true }).click();
      await page.getByRole('link', { name: 'Archives' }).waitFor({ state: 'detached' });
      const alert = page.getByRole('alert').filter({ hasText: 'The hardware security module is unavailable' });
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/Nothing was changed/);
      expect(await alert.textContent()).toMatch(/Request id: [0-9a-f-]{36}/);
      await page.screenshot({ path: path.join(SHOTS, '25-hsm-unavailable.png'), fullPage: true });
      // the shell stays usable: still signed in, other pages reachable
      expect(await page.getByTestId('whoami').textContent()).toBe(username);
    } finally {
      fs.rmSync(tokenDir, { recursive: true, force: true });
      fs.renameSync(moved, tokenDir);
      lib.finalize();
      lib.initialize();
      releaseLibrary(lib);
    }
    const until = Date.now() + 15_000;
    while (!t.appliance.keys.provider.health().up && Date.now() < until) {
      await t.appliance.keys.provider.ready().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.reload();
    await page.getByRole('link', { name: 'Archives' }).waitFor();
    await ctx.close();
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
