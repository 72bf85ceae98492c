import crypto from 'node:crypto';
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no browser download). The appliance's self-signed
 * certificate is trusted by pinning its public key (`--ignore-certificate-errors-spki-list`):
 * exactly that key, not "any certificate". Playwright gives the browser a new, empty profile
 * directory of its own; each context is a separate cookie jar (one per person in a scenario).
 *
 * Every page is watched for CSP violations (the `securitypolicyviolation` event, reported through
 * a binding, and the console's "Refused to …" messages) and for uncaught errors.
 */
export const CHROMIUM = '/usr/bin/chromium';

export function spkiHash(certPem: string): string {
  const der = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

export interface Watched {
  browser: Browser;
  /** CSP violations and console errors seen on any page so far */
  cspViolations: string[];
  consoleErrors: string[];
  pageErrors: string[];
  /** `locale`: the browser's language (navigator.languages, Accept-Language); English unless told */
  newContext(opts?: { userAgent?: string; locale?: string }): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchChromium(caPem: string): Promise<Watched> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test installs it)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      `--ignore-certificate-errors-spki-list=${spkiHash(caPem)}`,
    ],
  });
  const cspViolations: string[] = [];
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('console', (m) => {
      const t = m.text();
      if (/Content Security Policy|Refused to (?:load|execute|apply|evaluate|connect|frame|create)/i.test(t))
        cspViolations.push(`console: ${t}`);
      else if (m.type() === 'error') consoleErrors.push(t);
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  };
  return {
    browser,
    cspViolations,
    consoleErrors,
    pageErrors,
    async newContext(opts = {}) {
      const ctx = await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1366, height: 860 },
        locale: opts.locale ?? 'en-US',
        ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
      });
      ctx.setDefaultTimeout(15_000);
      await ctx.exposeBinding('__coffreCspViolation', (_src, v: string) => {
        cspViolations.push(`event: ${v}`);
      });
      await ctx.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          (window as unknown as { __coffreCspViolation(v: string): void }).__coffreCspViolation(
            `${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`,
          );
        });
      });
      ctx.on('page', watch);
      return ctx;
    },
    close: () => browser.close(),
  };
}
