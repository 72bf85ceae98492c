import fs from 'node:fs';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { sections } from '../../src/config/schema.js';
import { setLanguage } from '../../src/console/app/i18n/index.js';
import { SECTIONS, settingLabel } from '../../src/console/app/screens/setting-labels.js';
import { ROOT } from '../support/cli.js';

/**
 * The Settings page shows every key of the configuration under a label in words, in French and
 * in English (src/console/app/screens/setting-labels.ts): each leaf of the schema (src/config/schema.ts
 * and src/config/sections/, walked through `properties` and the variants of a union) has a label
 * `settings.labels.<section>.<key>` in both catalogues, never the key itself; no label is left for a
 * key the schema no longer has. No browser: the schema and the catalogues, and the page's lookup.
 */
const LANGS = ['en', 'fr'] as const;
type Tree = { [k: string]: string | Tree };
const labels = Object.fromEntries(
  LANGS.map((l) => {
    const file = path.join(ROOT, 'src/console/app/i18n/locales', l, 'settings.json');
    return [l, (JSON.parse(fs.readFileSync(file, 'utf8')) as { labels: Tree }).labels];
  }),
) as Record<(typeof LANGS)[number], Tree>;

/** the dotted keys of a schema's leaves: objects are walked, a union of objects walks each variant */
function leaves(schema: TSchema, prefix: string, out: Set<string>): Set<string> {
  const s = schema as { properties?: Record<string, TSchema>; anyOf?: TSchema[] };
  const objects = (s.anyOf ?? []).filter((v) => (v as { properties?: unknown }).properties);
  if (s.properties) for (const [k, v] of Object.entries(s.properties)) leaves(v, `${prefix}.${k}`, out);
  else if (objects.length) for (const v of objects) leaves(v, prefix, out);
  else out.add(prefix);
  return out;
}

/** the dotted keys of a catalogue subtree's texts */
function texts(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(key, v);
    else for (const [kk, vv] of texts(v, key)) out.set(kk, vv);
  }
  return out;
}

/** what is wrong with one language's labels for these schema leaves */
function problems(schemaLeaves: string[], tree: Tree): string[] {
  const have = texts(tree);
  const out = [
    ...schemaLeaves.filter((k) => !have.has(k)).map((k) => `no label: ${k}`),
    ...[...have.keys()].filter((k) => !schemaLeaves.includes(k)).map((k) => `no such key: ${k}`),
  ];
  for (const [k, v] of have) {
    const leaf = k.split('.').at(-1)!;
    // the key itself, its last part, a dotted key or a camelCase word is not a label in words
    if (v.trim() === '' || v === k || v === leaf || v.includes(`${k.split('.')[0]}.`) || /[a-z][A-Z][a-z]/.test(v))
      out.push(`not in words: ${k}`);
  }
  return out;
}

const schemaLeaves = [
  ...Object.entries(sections).reduce((acc, [name, schema]) => leaves(schema, name, acc), new Set<string>()),
];

describe('settings labels', () => {
  afterAll(() => setLanguage('en'));

  it('the walk reaches nested objects, optional objects, both database variants, and maps as one key', () => {
    expect(schemaLeaves.length).toBeGreaterThan(200);
    for (const k of [
      'auth.sessions.idleTimeoutMinutes',
      'storage.s3.bucket',
      'database.file',
      'database.host',
      'monitoring.rules.offHours.lastDay',
      'jobs.schedules',
    ])
      expect(schemaLeaves).toContain(k);
    expect(schemaLeaves.some((k) => k.startsWith('jobs.schedules.'))).toBe(false);
  });

  it('the check fails on a key without a label, a label without a key, and a key shown as its label', () => {
    const tree: Tree = { auth: { sessions: { idleTimeoutMinutes: 'idleTimeoutMinutes', gone: 'Gone' } } };
    expect(problems(['auth.sessions.idleTimeoutMinutes', 'auth.sessions.added'], tree)).toEqual([
      'no label: auth.sessions.added',
      'no such key: auth.sessions.gone',
      'not in words: auth.sessions.idleTimeoutMinutes',
    ]);
  });

  it('the page knows every section of the schema by name', () => {
    expect([...SECTIONS].sort()).toEqual(Object.keys(sections).sort());
  });

  for (const lang of LANGS)
    it(`${lang}: every leaf of the schema has a label in words, and every label a leaf`, () => {
      expect(problems(schemaLeaves, labels[lang])).toEqual([]);
    });

  it('French labels are not the English ones left untranslated, but for words both languages share', () => {
    const en = texts(labels.en);
    const same = [...texts(labels.fr)].filter(([k, v]) => en.get(k) === v).map(([k]) => k);
    // words both languages spell alike: "Port", "Latitude", "Longitude", "Interface"; none other
    expect(same.every((k) => /\.(port|lat|lon|type)$/.test(k))).toBe(true);
  });

  it('the page shows the label of the current language, and a map entry under its key’s label', () => {
    setLanguage('fr');
    expect(settingLabel('auth', 'sessions.idleTimeoutMinutes')).toBe('Délai d’inactivité de la session (minutes)');
    expect(settingLabel('jobs', 'schedules.backup')).toBe('Planification · backup');
    setLanguage('en');
    expect(settingLabel('auth', 'sessions.idleTimeoutMinutes')).toBe('Session idle timeout (minutes)');
    expect(settingLabel('jobs', 'schedules.backup')).toBe('Schedule · backup');
    // a key no catalogue names: its section's title, then the key in words
    expect(settingLabel('auth', 'future.someKey')).toBe('Sign-in and second factor · Future · some key');
  });
});
