import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { Page } from 'playwright-core';
import { ROOT } from '../support/cli.js';
import type { Lang } from './people.js';

export type { Lang };

/**
 * Checks shared by the console's browser tests: axe-core's serious and critical violations, the
 * 390 px sideways-scroll check, and an API call from a signed-in page.
 */
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export const PHONE = { width: 390, height: 844 };

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core's rules that depend on colours. The console's colour schemes differ only in CSS
 * (src/console/app/styles.css, `prefers-color-scheme`), never in the DOM: a page checked with every
 * rule in one scheme needs only these in the other.
 */
const COLOUR_RULES = ['color-contrast', 'link-in-text-block'];

/**
 * axe-core on the page as it is now; the serious and critical violations, one line each.
 * `colours`: only the colour rules (the page was checked with all of them in the other scheme).
 */
export async function axe(page: Page, where: string, o: { colours?: boolean } = {}): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE);
  const only = o.colours ? COLOUR_RULES : null;
  const violations = await page.evaluate(async (rules) => {
    const w = window as unknown as {
      axe: { run(ctx: Document, o: object): Promise<{ violations: Violation[] }> };
    };
    return (
      await w.axe.run(document, {
        resultTypes: ['violations'],
        ...(rules ? { runOnly: { type: 'rule', values: rules } } : {}),
      })
    ).violations;
  }, only);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${where}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** what sticks out sideways (outside any frame that scrolls by itself); empty when nothing does */
export async function overflow(page: Page, where: string): Promise<string[]> {
  const o = await page.evaluate(() => ({
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    inner: window.innerWidth,
    wide: [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .filter((e) => {
        for (let p = e.parentElement; p; p = p.parentElement)
          if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return false;
        return true;
      })
      .slice(0, 4)
      .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`),
  }));
  return o.doc > o.inner || o.body > o.inner
    ? [`${where}: page ${o.doc}px wide in ${o.inner}px (${o.wide.join(', ')})`]
    : [];
}

/** an API call from the signed-in page, with its session cookie and CSRF token */
export async function call(
  page: Page,
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ([m, url, b]) => {
      const me = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken?: string };
      const r = await fetch(`/api/v1${url}`, {
        method: m as string,
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken ?? '' },
        ...(b === undefined ? {} : { body: JSON.stringify(b) }),
      });
      return { status: r.status, json: await r.json().catch(() => null) };
    },
    [method, p, body] as const,
  );
}

const LOCALES = path.join(ROOT, 'src', 'console', 'app', 'i18n', 'locales');

/** the console's own catalogue: a message with its {{variables}} filled, `count` choosing the plural form */
export function catalogue(lang: Lang) {
  const cache = new Map<string, Record<string, unknown>>();
  return (key: string, vars: Record<string, string | number> = {}): string => {
    const [ns, ...rest] = key.split('.');
    if (!cache.has(ns!))
      cache.set(ns!, JSON.parse(fs.readFileSync(path.join(LOCALES, lang, `${ns}.json`), 'utf8')) as never);
    let node: unknown = cache.get(ns!);
    for (const [i, k] of rest.entries()) {
      const o = node as Record<string, unknown>;
      const plural = i === rest.length - 1 && typeof vars.count === 'number';
      const form = plural ? new Intl.PluralRules(lang).select(vars.count as number) : '';
      node = plural && `${k}_${form}` in o ? o[`${k}_${form}`] : o[k];
    }
    if (typeof node !== 'string') throw new Error(`no message ${key} in ${lang}`);
    return node.replace(/\{\{(\w+)\}\}/g, (_m, v: string) => String(vars[v]));
  };
}

/** registers (in a describe) a full screenshot of the current page when a test fails */
export function shotOnFailure(dir: string, page: () => Page | undefined): void {
  afterEach(async (c) => {
    const p = page();
    if (c.task.result?.state === 'fail' && p)
      await p
        .screenshot({ path: path.join(dir, `failed-${c.task.name.slice(0, 40).replace(/\W+/g, '-')}.png`) })
        .catch(() => undefined);
  });
}
