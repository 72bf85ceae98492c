import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { newWorkspace, startBenchAppliance } from './_peers-appliance.js';
import { ensureTools } from './_tools.js';
import { MiB, load, randomFile, rate, stop } from './_vault-lib.js';

/**
 * `npm run bench -- console`: a person's upload and download of one CONSOLE_BENCH_BYTES (256 MiB)
 * file of random bytes through the real console in Debian's Chromium (playwright-core), against
 * `coffre serve` on loopback HTTPS. Upload: from choosing the file in the workspace's file input
 * to the console showing it done (the console streams it with one XMLHttpRequest); download: from
 * the click on the document's Download button (the console checks the session first, then the
 * browser's own download manager saves the attachment) to the file complete on disk.
 * CONSOLE_BENCH_REPEAT rounds (3), each with a new name (no conflict dialog). Reported, no target.
 */
const SIZE = Number(process.env.CONSOLE_BENCH_BYTES ?? 256 * MiB);
const REPEAT = Math.max(1, Number(process.env.CONSOLE_BENCH_REPEAT ?? 3));
const CHROMIUM = '/usr/bin/chromium';

/** the certificate's key, which Chromium is told to trust (exactly that key) */
const spki = (pem: string) =>
  crypto
    .createHash('sha256')
    .update(new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

export default async function bench(): Promise<Record<string, unknown>> {
  ensureTools({ [CHROMIUM]: 'chromium' });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-console-'));
  const children: ChildProcess[] = [];
  const out: Record<string, unknown> = { uptime: fs.readFileSync('/proc/loadavg', 'utf8').trim() };
  try {
    const a = await startBenchAppliance(root);
    children.push(a.child);
    const ws = await newWorkspace(a, 'Console bench');
    const file = path.join(root, 'console.bin');
    randomFile(file, SIZE);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', `--ignore-certificate-errors-spki-list=${spki(a.ca)}`],
    });
    const up: number[] = [];
    const down: number[] = [];
    const loads: number[] = [];
    try {
      const ctx = await browser.newContext({ acceptDownloads: true, locale: 'en-GB' });
      ctx.setDefaultTimeout(600_000);
      const page = await ctx.newPage();
      await page.goto(a.url);
      await page.getByLabel('User name').fill(a.username);
      await page.getByLabel('Password', { exact: true }).fill(a.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('whoami').filter({ hasText: a.username }).waitFor();
      await page.goto(`${a.url}/#/workspaces/${ws}`);
      for (let r = 0; r < REPEAT; r++) {
        loads.push(load());
        const name = `recording-${r}.bin`;
        const named = path.join(root, name);
        fs.linkSync(file, named); // the browser sends the file's own name
        let t = performance.now();
        await page.locator('#file-new').setInputFiles(named);
        await page.locator(`.upload-row[data-name="${name}"][data-status="done"]`).waitFor();
        up.push((performance.now() - t) / 1000);
        const button = page.getByRole('button', { name: `Download ${name}` });
        await button.waitFor();
        t = performance.now();
        const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
        const saved = await download.path();
        down.push((performance.now() - t) / 1000);
        const bytes = fs.statSync(saved).size;
        await download.delete();
        if (bytes !== SIZE) throw new Error(`console download: ${bytes} of ${SIZE} bytes`);
        process.stderr.write(`console: round ${r} up ${up.at(-1)!.toFixed(1)} s, down ${down.at(-1)!.toFixed(1)} s\n`);
      }
      loads.push(load());
    } finally {
      await browser.close();
    }
    out.result = {
      bytes: SIZE,
      rounds: REPEAT,
      load1: loads,
      uploadMiBs: { best: rate(SIZE, Math.min(...up)), runs: up.map((s) => rate(SIZE, s)) },
      downloadMiBs: { best: rate(SIZE, Math.min(...down)), runs: down.map((s) => rate(SIZE, s)) },
    };
  } finally {
    for (const c of children) await stop(c);
    fs.rmSync(root, { recursive: true, force: true });
  }
  return out;
}
