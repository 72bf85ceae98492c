import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { codeIn, linkIn, startSmsReceiver, startSmtp, type SmsSink, type SmtpSink } from '../auth/support.js';
import { startAppliance, type RunningAppliance } from './appliance.js';

/**
 * The console on an appliance that has a mail server and an SMS gateway (a real SMTP server with
 * STARTTLS, `smtp-server`, and a real HTTP receiver standing in for the customer's gateway), in
 * Debian's Chromium:
 * - the admin enrols with e-mailed codes and signs in with the code from the mail;
 * - invitations are e-mailed: the dialog says so and the link never reaches the admin's page;
 * - a member enrols from the mailed link with text-message codes and signs in with the SMS code;
 * - the member, owner of a workspace, adds someone with the member picker;
 * - the admin reminds the access reviewers by e-mail, and reads the settings (secrets redacted).
 * No CSP violation and no script error during the whole run.
 */
const SHOTS = path.join(ROOT, 'test-results', 'console');

let app: RunningAppliance;
let chrome: Watched;
let smtp: SmtpSink;
let sms: SmsSink;

interface Person {
  username: string;
  password: string;
  email: string;
  ctx: BrowserContext;
  page: Page;
}
const people: Person[] = [];
async function person(username: string, password: string): Promise<Person> {
  const ctx = await chrome.newContext();
  const p = { username, password, email: `${username}@example.test`, ctx, page: await ctx.newPage() };
  people.push(p);
  return p;
}
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** enrols from a link with the chosen second factor */
async function enrol(p: Person, link: string, factor: 'email' | 'sms' | 'none', phone?: string): Promise<void> {
  const { page } = p;
  await page.goto(link);
  await page.getByRole('heading', { name: 'Welcome to Coffre' }).waitFor();
  await page.waitForURL(/#\/enrol$/);
  await page.getByLabel('New password', { exact: true }).fill(p.password);
  await page.getByLabel('Repeat the new password').fill(p.password);
  await page
    .getByLabel(
      factor === 'email' ? 'A code sent by e-mail' : factor === 'sms' ? 'A code sent by text message' : 'None for now',
    )
    .check();
  if (phone) await page.getByLabel('Mobile phone number').fill(phone);
  await page.getByRole('button', { name: 'Activate my account' }).click();
  await page.getByRole('heading', { name: 'You are enrolled' }).waitFor();
  if (factor !== 'none') expect(await page.getByTestId('recovery-codes').locator('li').count()).toBe(10);
  await page.getByRole('button', { name: 'Continue to sign-in' }).click();
}

/** password, then (when asked) the code that `code()` fetches from where it was sent */
async function signIn(p: Person, code?: () => Promise<string>, shotName?: string): Promise<void> {
  const { page } = p;
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('User name').fill(p.username);
  await page.getByLabel('Password', { exact: true }).fill(p.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (code) {
    await page.getByRole('heading', { name: 'Second factor' }).waitFor();
    if (shotName) await shot(page, shotName);
    await page.getByLabel('One-time code').fill(await code());
    await page.getByRole('button', { name: 'Verify and sign in' }).click();
  }
  await page.getByTestId('whoami').filter({ hasText: p.username }).waitFor();
}

/** invites from the users page; the link arrives by mail, never on the admin's page */
async function invite(admin: Person, username: string, role: string): Promise<string> {
  const { page } = admin;
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.getByRole('button', { name: 'Invite a user' }).click();
  const dialog = page.getByRole('dialog', { name: 'Invite a user' });
  await dialog.getByLabel('User name').fill(username);
  await dialog.getByLabel('E-mail address').fill(`${username}@example.test`);
  await dialog.getByLabel('Role').selectOption(role);
  await dialog.getByRole('button', { name: 'Invite', exact: true }).click();
  await page.getByText(`Invitation e-mailed to ${username}`).waitFor();
  expect(await page.getByTestId('invite-mailed').textContent()).toContain(`${username}@example.test`);
  const mail = await smtp.next(`${username}@example.test`, 30_000);
  const link = linkIn(mail.raw);
  // the one-time link is nowhere in the admin's page (nor its token)
  const token = link.split('/').pop()!;
  expect(await page.getByTestId('enrol-link').count()).toBe(0);
  expect(await page.content()).not.toContain(token);
  expect(await page.evaluate(() => document.body.innerText)).not.toMatch(/#\/enrol\//);
  return link;
}

describe('web console with mail and SMS, in Chromium', () => {
  let admin: Person;
  let member: Person;

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    const dir = tempDir('coffre-console-msg-');
    smtp = await startSmtp(dir);
    sms = await startSmsReceiver();
    app = await startAppliance({ username: 'alice', email: 'alice@example.test' }, [], {
      COFFRE_CFG_mail: JSON.stringify({
        smtp: {
          host: '127.0.0.1',
          port: smtp.port,
          tls: 'required',
          caFile: smtp.caFile,
          from: 'Coffre <coffre@example.test>',
        },
        sms: { url: sms.url, bodyTemplate: '{"to":"{{to}}","text":"{{message}}"}' },
      }),
    });
    chrome = await launchChromium(app.ca);
  });
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail')
      for (const p of people)
        await shot(p.page, `failed-msg-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}-${p.username}`).catch(
          () => undefined,
        );
  });
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
    await smtp?.close();
    await sms?.close();
  });

  it('the admin enrols with e-mailed codes and signs in with the code from the mail', async () => {
    admin = await person('alice', 'Silver-Orchard-83-herons');
    await enrol(admin, app.enrolUrl!, 'email');
    await signIn(
      admin,
      async () => codeIn((await smtp.next('alice@example.test', 30_000)).raw),
      '30-second-factor-email',
    );
    await admin.page.getByRole('link', { name: 'My account' }).click();
    await admin.page.getByRole('heading', { name: 'My account' }).waitFor();
    expect(await admin.page.locator('main').textContent()).toMatch(/e-mail/i);
  });

  it('an invitation is e-mailed: the dialog says so and never shows the link; the member enrols with SMS codes and signs in with one', async () => {
    const link = await invite(admin, 'sam', 'member');
    await shot(admin.page, '31-invite-mailed');
    member = await person('sam', 'Velvet-Canyon-47-otters');
    await enrol(member, link, 'sms', '+33 6 12 34 56 78');
    const before = sms.received.length;
    await signIn(member, async () => {
      await expect.poll(() => sms.received.length, { timeout: 30_000 }).toBeGreaterThan(before);
      const msg = JSON.parse(sms.received.at(-1)!.body) as { to: string; text: string };
      expect(msg.to).toBe('+33612345678');
      return codeIn(msg.text);
    });
    // a wrong code first would have been refused: the code is bound to this sign-in (checked in test/auth)
    await member.page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor();
  });

  it('the owner of a workspace adds a member with the picker (by user name, not by id)', async () => {
    const paulaLink = await invite(admin, 'paula', 'member');
    const paula = await person('paula', 'Lichen-Harbour-29-finches');
    // a second factor is required for every role by default: paula takes e-mailed codes
    await enrol(paula, paulaLink, 'email');

    const { page } = member;
    await page.getByRole('button', { name: 'New workspace' }).click();
    const dialog = page.getByRole('dialog', { name: 'New workspace' });
    await dialog.getByLabel('Name').fill('Achats');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Achats' }).waitFor();
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByRole('heading', { name: 'Members' }).waitFor();
    await page.getByLabel('Find a person').fill('paula');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    const candidate = page.getByRole('list', { name: 'Matching people' }).getByRole('button', { name: 'paula' });
    await candidate.waitFor();
    await shot(page, '32-member-picker');
    // the owner is offered as already a member, and cannot be picked twice
    await page.getByLabel('Find a person').fill('sam');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByRole('button', { name: /sam — already a member/ }).waitFor();
    expect(await page.getByRole('button', { name: /sam — already a member/ }).isDisabled()).toBe(true);
    await page.getByLabel('Find a person').fill('PAULA');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await candidate.click();
    await page.getByTestId('picked-member').filter({ hasText: 'paula' }).waitFor();
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByText('paula added as viewer').waitFor();
    await page.getByRole('table', { name: 'Members' }).getByRole('cell', { name: 'paula' }).waitFor();
    // paula now sees the workspace
    await signIn(paula, async () => codeIn((await smtp.next('paula@example.test', 30_000)).raw));
    await paula.page.getByRole('link', { name: 'Achats' }).waitFor();
  });

  it('the admin reminds the access reviewers now; the reminders arrive by e-mail; a second click is refused', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Access reviews', exact: true }).click();
    const openLink = page.getByRole('link', { name: 'Open the current campaign' });
    const startBtn = page.getByRole('button', { name: 'Start a campaign' });
    await openLink.or(startBtn).waitFor();
    if (await openLink.isVisible()) await openLink.click();
    else await startBtn.click();
    await page.getByRole('heading', { name: 'Access review', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Remind reviewers' }).click();
    // sam owns a workspace (memberships to review); alice decides roles
    await page.getByText('Reminder e-mailed to 2 of 2 reviewers').waitFor();
    expect((await smtp.next('sam@example.test', 30_000)).raw).toMatch(/access review is waiting/);
    expect((await smtp.next('alice@example.test', 30_000)).raw).toMatch(/access review is waiting/);
    await shot(page, '33-review-reminded');
    await page.getByRole('button', { name: 'Remind reviewers' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /reminded less than 60 minutes ago/ })
      .waitFor();
  });

  it('the admin reads the settings: sections of the effective configuration, secrets redacted', async () => {
    const { page } = admin;
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    await page.getByRole('heading', { name: 'Settings', exact: true }).waitFor();
    await page.getByText('These settings can be changed here').waitFor();
    const pin = page.locator('tr[data-key="keys.pinFile"] td');
    expect(await pin.textContent()).toBe('hidden');
    // the SMTP server is one of the settings an admin edits here (test/console/settings-edit.test.ts)
    expect(await page.getByTestId('setting-mail.smtp.host').inputValue()).toBe('127.0.0.1');
    expect(await page.locator('tr[data-key="keys.kekLabel"] td').textContent()).toBe('coffre-kek');
    const pinValue = fs.readFileSync(path.join(app.dataDir, 'secrets', 'hsm-pin'), 'utf8').trim();
    const text = await page.evaluate(() => document.body.innerText);
    expect(text).not.toContain(pinValue);
    expect(text).not.toContain('secrets/hsm-pin');
    await shot(page, '34-settings');
  });

  it('reported no CSP violation and no script error during the whole run', () => {
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
