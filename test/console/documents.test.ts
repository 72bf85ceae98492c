import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Watched } from '../support/browser.js';
import { ROOT } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { startAppliance, type RunningAppliance } from './appliance.js';
import { catalogue, type Lang } from './checks.js';

/**
 * The documents screens in Debian's Chromium against a real appliance (`coffre init`, `coffre
 * serve`, HTTPS), once in French and once in English, each by a member in their own workspace:
 * name conflicts on upload (new version, keep both), tags edited and used as a filter, a search
 * that ignores accents, moves by the dialog and by dragging onto a folder, a folder renamed,
 * several documents selected then downloaded as one zip and moved to the trash, a purge, and an
 * older version restored with each version's author shown. Every label is read from the console's
 * own catalogues, so the test checks the screens in the language they claim. Screenshots go to
 * test-results/console-documents/ (not committed).
 */
const SHOTS = path.join(ROOT, 'test-results', 'console-documents');
let app: RunningAppliance;
let chrome: Watched;

/** a JSON request to the appliance over HTTPS (as a script would make it) */
function api(method: string, p: string, body: unknown, token?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(p, app.url),
      {
        method,
        ca: app.ca,
        servername: 'localhost',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** a user invited with the local CLI and enrolled through the API (only admins need a second factor here) */
async function enrolled(username: string, password: string, role = 'member'): Promise<void> {
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
  expect(r.code, r.stderr).toBe(0);
  const link = (JSON.parse(r.stdout) as { enrolUrl: string }).enrolUrl;
  const token = link.slice(link.indexOf('#/enrol/') + '#/enrol/'.length);
  expect((await api('POST', '/api/v1/auth/enrol', { token, password })).status).toBe(200);
}

/** a records manager's API token, to place legal holds */
async function recordsManager(): Promise<string> {
  const password = 'Registre-des-Archives-2026';
  const username = `rm${Math.random().toString(36).slice(2, 8)}`;
  await enrolled(username, password, 'records-manager');
  const l = await api('POST', '/api/v1/auth/login', { username, password, issue: 'token' });
  expect(l.status, JSON.stringify(l.json)).toBe(200);
  return l.json.token as string;
}

/** an unzipped listing with Info-ZIP's stock `unzip` */
function zipNames(file: string): string[] {
  const out = execFileSync('unzip', ['-Z1', file], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).sort();
}

const file = (name: string, text: string) => ({
  name,
  mimeType: 'application/octet-stream',
  buffer: Buffer.from(text),
});

function scenario(lang: Lang, username: string, workspace: string) {
  const t = catalogue(lang);
  const password = `Quai-des-Brumes-${lang}-2026`;
  let ctx: BrowserContext;
  let page: Page;
  let wsUrl = '';
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${lang}-${name}.png`), fullPage: true });
  const row = (name: string) => page.locator(`tr[data-doc="${name}"]`);
  const folderRow = (name: string) => page.locator(`tr[data-folder="${name}"]`);
  const uploaded = (name: string) => page.locator(`.upload-row[data-name="${name}"][data-status="done"]`);
  const choose = (...files: ReturnType<typeof file>[]) => page.locator('#file-new').setInputFiles(files);
  const dialog = (title: string) => page.getByRole('dialog', { name: title });
  const notice = (text: string) => page.getByText(text, { exact: true }).first().waitFor();

  describe(`documents in ${lang === 'fr' ? 'French' : 'English'}`, () => {
    beforeAll(async () => {
      await enrolled(username, password);
      ctx = await chrome.newContext({ locale: lang === 'fr' ? 'fr-FR' : 'en-GB' });
      page = await ctx.newPage();
      await page.goto(app.url);
      await page.getByLabel(t('signin.username')).fill(username);
      await page.getByLabel(t('signin.password'), { exact: true }).fill(password);
      await page.getByRole('button', { name: t('signin.submit') }).click();
      await page.getByTestId('whoami').filter({ hasText: username }).waitFor();
      await page.goto(`${app.url}/#/workspaces`);
      await page
        .getByRole('button', { name: t('documents.ws.new') })
        .first()
        .click();
      const d = dialog(t('documents.ws.new'));
      await d.getByLabel(t('documents.col.name')).fill(workspace);
      await d.getByRole('button', { name: t('documents.create') }).click();
      await page.getByRole('heading', { name: workspace }).waitFor();
      wsUrl = page.url();
    }, 120_000);
    afterEach(async (c) => {
      if (c.task.result?.state === 'fail')
        await shot(`failed-${c.task.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => undefined);
    });
    afterAll(async () => ctx?.close());

    it('a name already in the folder asks: new version, or keep both under a free name', async () => {
      await choose(file('Plan d’évacuation.pdf', 'v1'), file('notes.txt', 'notes'), file('budget.xlsx', 'budget'));
      for (const n of ['Plan d’évacuation.pdf', 'notes.txt', 'budget.xlsx']) await uploaded(n).waitFor();
      await row('budget.xlsx').waitFor();
      // the same name again: the prompt, then "new version"
      await choose(file('Plan d’évacuation.pdf', 'v2 of the plan'));
      const ask = dialog(t('documents.conflict.title', { name: 'Plan d’évacuation.pdf' }));
      await ask.waitFor();
      await ask.getByText(t('documents.conflict.bothText', { free: 'Plan d’évacuation (2).pdf' })).waitFor();
      await shot('01-name-conflict');
      await ask.getByRole('button', { name: t('documents.conflict.version') }).click();
      await notice(t('documents.upload.done', { name: 'Plan d’évacuation.pdf', version: 2 }));
      await expect.poll(() => row('Plan d’évacuation.pdf').locator('td.num').nth(1).textContent()).toBe('v2');
      // and again: "keep both" makes a second document under a free name
      await choose(file('notes.txt', 'other notes'));
      await dialog(t('documents.conflict.title', { name: 'notes.txt' }))
        .getByRole('button', { name: t('documents.conflict.both') })
        .click();
      await row('notes (2).txt').waitFor();
      expect(await row('notes.txt').count()).toBe(1);
      // "do not upload" changes nothing
      await choose(file('budget.xlsx', 'never'));
      await dialog(t('documents.conflict.title', { name: 'budget.xlsx' }))
        .getByRole('button', { name: t('documents.conflict.skip') })
        .click();
      await page.locator('.upload-row[data-name="budget.xlsx"][data-status="cancelled"]').waitFor();
      expect(await page.locator('tbody tr[data-doc]').count()).toBe(4);
    });

    it('tags are edited in a dialog, then filter the list; the search ignores accents and case', async () => {
      await row('Plan d’évacuation.pdf')
        .getByRole('button', { name: t('documents.tagsEdit.button') })
        .click();
      const d = dialog(t('documents.tagsEdit.title', { name: 'Plan d’évacuation.pdf' }));
      await d.getByLabel(t('documents.tagsEdit.add')).fill('sécurité, urgent');
      await d.getByLabel(t('documents.tagsEdit.add')).press('Enter');
      await d.getByRole('button', { name: t('documents.tagsEdit.remove', { tag: 'urgent' }) }).click();
      await shot('02-tags');
      await d.getByRole('button', { name: t('documents.tagsEdit.save') }).click();
      await d.waitFor({ state: 'hidden' });
      await row('Plan d’évacuation.pdf').getByText('sécurité').waitFor();
      await page.getByLabel(t('documents.tagFilter.label')).selectOption('sécurité');
      await page.getByText(t('documents.tagFilter.active', { tag: 'sécurité' })).waitFor();
      await expect.poll(() => page.locator('tbody tr[data-doc]').count()).toBe(1);
      await page.getByRole('button', { name: t('documents.search.clear') }).click();
      await row('budget.xlsx').waitFor();
      // "evacuation", no accent, upper case: found through the appliance's folded index
      await page.locator('#doc-search').fill('EVACUATION');
      await page.locator('#doc-search').press('Enter');
      await page.getByText(t('documents.search.results')).waitFor();
      await expect.poll(() => page.locator('tbody tr[data-doc]').count()).toBe(1);
      await row('Plan d’évacuation.pdf').waitFor();
      await shot('03-search-folded');
      await page.getByRole('button', { name: t('documents.search.clear') }).click();
    });

    it('moves with the dialog (keyboard) and by dragging onto a folder; a folder is renamed', async () => {
      await page.goto(wsUrl);
      for (const name of ['Archives', 'Procédures']) {
        await page.getByRole('button', { name: t('documents.folder.new') }).click();
        const d = dialog(t('documents.folder.new'));
        await d.getByLabel(t('documents.folder.name')).fill(name);
        await d.getByRole('button', { name: t('documents.create') }).click();
        await folderRow(name).waitFor();
      }
      // the dialog: reached and used with the keyboard only
      await row('notes (2).txt')
        .getByRole('button', { name: t('documents.move.label', { name: 'notes (2).txt' }), exact: true })
        .focus();
      await page.keyboard.press('Enter');
      const d = dialog(t('documents.move.titleOne', { name: 'notes (2).txt' }));
      await d.getByLabel('Archives', { exact: true }).check();
      await shot('04-move-dialog');
      await d.getByRole('button', { name: t('documents.move.confirm') }).click();
      await notice(t('documents.move.done', { count: 1, folder: 'Archives' }));
      await row('notes (2).txt').waitFor({ state: 'detached' });
      // dragging a document onto a folder row
      await row('budget.xlsx').dragTo(folderRow('Procédures'));
      await notice(t('documents.move.done', { count: 1, folder: 'Procédures' }));
      await row('budget.xlsx').waitFor({ state: 'detached' });
      // a folder renamed, then dragged into the other
      await folderRow('Archives')
        .getByRole('button', { name: t('documents.folder.renameLabel', { name: 'Archives' }) })
        .click();
      const r = dialog(t('documents.folder.renameTitle', { name: 'Archives' }));
      await r.getByLabel(t('documents.folder.name')).fill('Archives 2026');
      await r.getByRole('button', { name: t('documents.rename.button') }).click();
      await folderRow('Archives 2026').waitFor();
      await folderRow('Archives 2026').dragTo(folderRow('Procédures'));
      await folderRow('Archives 2026').waitFor({ state: 'detached' });
      await folderRow('Procédures').getByRole('link', { name: 'Procédures' }).click();
      await row('budget.xlsx').waitFor();
      await folderRow('Archives 2026').waitFor();
      await shot('05-moved');
      // and back to the root by dragging onto the breadcrumb
      await row('budget.xlsx').dragTo(page.locator('nav.breadcrumbs a[data-drop="root"]'));
      await row('budget.xlsx').waitFor({ state: 'detached' });
      await page.goto(wsUrl);
      await row('budget.xlsx').waitFor();
    });

    it('several documents selected: one zip download, then one dialog moves them all to the trash; a purge', async () => {
      await page.goto(wsUrl);
      await row('budget.xlsx').waitFor();
      for (const n of ['budget.xlsx', 'notes.txt'])
        await row(n)
          .getByLabel(t('documents.bulk.select', { name: n }))
          .check();
      const bar = page.getByRole('region', { name: t('documents.bulk.label') });
      await bar.getByText(t('documents.bulk.selected', { count: 2 })).waitFor();
      await shot('06-bulk');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        bar.getByRole('button', { name: t('documents.bulk.zip') }).click(),
      ]);
      const saved = path.join(tempDir('coffre-console-zip-'), 'docs.zip');
      await download.saveAs(saved);
      expect(zipNames(saved)).toEqual(['budget.xlsx', 'notes.txt']);
      await bar.getByRole('button', { name: t('documents.trash.move') }).click();
      const c = dialog(t('documents.bulk.trashTitle', { count: 2 }));
      await c.getByText(t('documents.bulk.trashBody', { count: 2 })).waitFor();
      await c.getByRole('button', { name: t('documents.bulk.trashConfirm', { count: 2 }) }).click();
      await notice(t('documents.bulk.trashed', { count: 2 }));
      await row('notes.txt').waitFor({ state: 'detached' });
      await row('budget.xlsx').waitFor({ state: 'detached' });
      // the owner purges one from the trash, after a dialog that says it is for good
      await page.getByRole('button', { name: t('documents.trash.title'), exact: true }).click();
      await row('notes.txt')
        .getByRole('button', { name: t('documents.purge.label', { name: 'notes.txt' }) })
        .click();
      const p = dialog(t('documents.purge.title', { name: 'notes.txt' }));
      await shot('07-purge-dialog');
      await p.getByRole('button', { name: t('documents.purge.confirm') }).click();
      await notice(t('documents.purge.done', { name: 'notes.txt' }));
      await row('notes.txt').waitFor({ state: 'detached' });
      // a legal hold on the other: the purge is refused, and the page says why in words
      const href = await row('budget.xlsx').getByRole('link', { name: 'budget.xlsx' }).getAttribute('href');
      const id = decodeURIComponent(href!.split('/documents/')[1]!);
      const hold = await api(
        'POST',
        '/api/v1/records/holds',
        { scope: { kind: 'document', id } },
        await recordsManager(),
      );
      expect(hold.status, JSON.stringify(hold.json)).toBe(201);
      await row('budget.xlsx')
        .getByRole('button', { name: t('documents.purge.label', { name: 'budget.xlsx' }) })
        .click();
      await dialog(t('documents.purge.title', { name: 'budget.xlsx' }))
        .getByRole('button', { name: t('documents.purge.confirm') })
        .click();
      await page.getByText(t('documents.purge.refused')).waitFor();
      expect(await page.getByTestId('purge-refused').textContent()).toContain(
        t('documents.purge.why.hold', { message: '' }).replace(/\s*\(\)\s*$/, ''),
      );
      await shot('07b-purge-refused-hold');
      await row('budget.xlsx').waitFor();
    });

    it('each version shows its author; an older version is restored as a new one after a dialog', async () => {
      await page.goto(wsUrl);
      await row('Plan d’évacuation.pdf').getByRole('link', { name: 'Plan d’évacuation.pdf' }).click();
      await page.getByRole('heading', { name: 'Plan d’évacuation.pdf' }).waitFor();
      await page.locator('tr[data-version="1"]').getByText(username).waitFor();
      await page
        .locator('tr[data-version="1"]')
        .getByRole('button', { name: t('documents.versions.restoreLabel', { version: 1 }) })
        .click();
      const d = dialog(t('documents.versions.restoreTitle', { version: 1, name: 'Plan d’évacuation.pdf' }));
      await d
        .getByText(t('documents.versions.restoreBody', { version: 1, next: 3, name: 'Plan d’évacuation.pdf' }))
        .waitFor();
      await shot('08-restore-dialog');
      await d.getByRole('button', { name: t('documents.versions.restoreConfirm', { version: 1 }) }).click();
      await notice(t('documents.versions.restored', { version: 1, next: 3 }));
      await page.locator('tr[data-version="3"]').waitFor();
      expect(await page.locator('tr[data-version="3"] [data-testid="version-author"]').textContent()).toBe(username);
      // v3 holds v1's bytes
      const sha = await page
        .locator('tr[data-version]')
        .evaluateAll((rows) =>
          rows.map(
            (r) =>
              [
                r.getAttribute('data-version') ?? '',
                r.querySelector('td[title]')?.getAttribute('title') ?? '',
              ] as const,
          ),
        );
      const byVersion = new Map(sha);
      expect(byVersion.get('3')).toBe(byVersion.get('1'));
      expect(byVersion.get('2')).not.toBe(byVersion.get('1'));
      // the document page moves and tags too
      await page.getByRole('button', { name: t('documents.move.button'), exact: true }).click();
      const m = dialog(t('documents.move.titleOne', { name: 'Plan d’évacuation.pdf' }));
      await m.getByLabel('Procédures', { exact: true }).check();
      await m.getByRole('button', { name: t('documents.move.confirm') }).click();
      await notice(t('documents.move.done', { count: 1, folder: 'Procédures' }));
      await shot('09-document');
    });
  });
}

describe('the documents screens', () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    app = await startAppliance({ username: 'admin', email: 'admin@example.test' }, [], {
      // members sign in with a password only here: the second factor has its own tests
      COFFRE_CFG_auth__mfa__requiredRoles: '["admin"]',
    });
    chrome = await launchChromium(app.ca);
  }, 120_000);
  afterAll(async () => {
    await chrome?.close();
    await app?.stop();
  });

  scenario('fr', 'olga', 'Urgences');
  scenario('en', 'eddie', 'Emergency');

  it('reported no CSP violation and no script error', () => {
    expect(chrome.cspViolations).toEqual([]);
    expect(chrome.pageErrors).toEqual([]);
  });
});
