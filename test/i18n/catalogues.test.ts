import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

/**
 * The catalogues of both languages say the same things: for the console (src/console/app/i18n)
 * and for the server (src/shared/i18n), French and English have the same files, exactly the same
 * keys, no empty value, the same `{{variables}}` in each message, and every file is loaded.
 */
const CATALOGUES = [
  { name: 'console', dir: path.join(ROOT, 'src/console/app/i18n'), loader: 'resources.ts' },
  { name: 'server', dir: path.join(ROOT, 'src/shared/i18n'), loader: 'index.ts' },
];
const LANGS = ['en', 'fr'];

type Flat = Map<string, unknown>;
function flatten(o: unknown, prefix: string, out: Flat): Flat {
  if (o !== null && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, o);
  return out;
}
const vars = (s: string) => [...s.matchAll(/\{\{\s*([\w.]+)\s*\}\}/g)].map((m) => m[1]).sort();

function load(dir: string, lang: string): { files: string[]; keys: Flat } {
  const d = path.join(dir, 'locales', lang);
  const files = fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const keys: Flat = new Map();
  for (const f of files) flatten(JSON.parse(fs.readFileSync(path.join(d, f), 'utf8')), path.basename(f, '.json'), keys);
  return { files, keys };
}

/** the checks, on two flattened catalogues; returns what is wrong */
export function compare(a: Flat, b: Flat): string[] {
  const problems: string[] = [];
  for (const k of a.keys()) if (!b.has(k)) problems.push(`missing in fr: ${k}`);
  for (const k of b.keys()) if (!a.has(k)) problems.push(`missing in en: ${k}`);
  for (const [lang, m] of [
    ['en', a],
    ['fr', b],
  ] as const) {
    for (const [k, v] of m) {
      if (typeof v !== 'string') problems.push(`${lang}: ${k} is not a string`);
      else if (v.trim() === '') problems.push(`${lang}: ${k} is empty`);
    }
  }
  for (const [k, v] of a) {
    const w = b.get(k);
    if (typeof v === 'string' && typeof w === 'string' && vars(v).join() !== vars(w).join())
      problems.push(`${k}: variables differ (en ${vars(v).join(',')} / fr ${vars(w).join(',')})`);
  }
  return problems;
}

describe('catalogues', () => {
  for (const c of CATALOGUES) {
    it(`${c.name}: French and English have the same files and keys, none empty, same variables`, () => {
      const [en, fr] = LANGS.map((l) => load(c.dir, l)) as [ReturnType<typeof load>, ReturnType<typeof load>];
      expect(fr.files).toEqual(en.files);
      expect(en.keys.size).toBeGreaterThan(10);
      expect(compare(en.keys, fr.keys)).toEqual([]);
    });

    it(`${c.name}: every catalogue file is loaded by ${c.loader}`, () => {
      const loader = fs.readFileSync(path.join(c.dir, c.loader), 'utf8');
      for (const l of LANGS)
        for (const f of load(c.dir, l).files) expect(loader, `${l}/${f}`).toContain(`./locales/${l}/${f}`);
    });
  }

  it('the comparison finds a missing key, an empty value and a changed variable', () => {
    const en = new Map<string, unknown>([
      ['a.b', 'Hello {{name}}'],
      ['a.c', 'x'],
      ['a.d', 'y'],
    ]);
    const fr = new Map<string, unknown>([
      ['a.b', 'Bonjour {{nom}}'],
      ['a.c', ' '],
      ['a.e', 'z'],
    ]);
    expect(compare(en, fr)).toEqual([
      'missing in fr: a.d',
      'missing in en: a.e',
      'fr: a.c is empty',
      'a.b: variables differ (en name / fr nom)',
    ]);
  });
});
