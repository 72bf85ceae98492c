#!/usr/bin/env node
// Writes docs/config.md from the configuration schema: every key of `<data dir>/config.json` with its
// type, default, bounds and the doc comment written next to it in src/config/sections/*.ts.
// Reads the built schema (dist/, `npm run build`). `--check` (run by `npm run lint`) fails when the file
// is out of date.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'docs', 'config.md');
const BUILT = path.join(ROOT, 'dist', 'src', 'config', 'schema.js');
const SECTIONS = path.join(ROOT, 'src', 'config', 'sections');

if (!fs.existsSync(BUILT)) {
  console.error('dist/src/config/schema.js is missing: run `npm run build` first');
  process.exit(2);
}
const { sections } = await import(pathToFileURL(BUILT).href);

/**
 * Doc comments by key path, read from the section sources: a `/** … *\/` (or `// …`) right above a
 * `key: Type.…` line; nesting follows the indentation. Keyed by the exported constant's name.
 */
function comments() {
  const byConst = new Map();
  for (const f of fs.readdirSync(SECTIONS).filter((n) => n.endsWith('.ts'))) {
    const lines = fs.readFileSync(path.join(SECTIONS, f), 'utf8').split('\n');
    let current = null;
    let stack = [];
    let pending = [];
    let inBlock = false;
    for (const line of lines) {
      const exp = /^export const (\w+) = /.exec(line);
      if (exp) {
        current = new Map();
        byConst.set(exp[1], current);
        stack = [];
        pending = [];
        continue;
      }
      const t = line.trim();
      if (inBlock) {
        pending.push(
          t
            .replace(/\*\/$/, '')
            .replace(/^\*\s?/, '')
            .trim(),
        );
        if (t.endsWith('*/')) inBlock = false;
        continue;
      }
      if (t.startsWith('/**') || t.startsWith('/*')) {
        pending = [
          t
            .replace(/^\/\*\*?/, '')
            .replace(/\*\/$/, '')
            .trim(),
        ];
        inBlock = !t.endsWith('*/');
        continue;
      }
      if (t.startsWith('//')) {
        pending.push(t.replace(/^\/\/\s?/, ''));
        continue;
      }
      const key = /^(\s*)(\w+)\??:\s*Type\./.exec(line);
      if (key && current) {
        const indent = key[1].length;
        while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
        const p = [...stack.map((s) => s.name), key[2]].join('.');
        const text = pending.filter(Boolean).join(' ').trim();
        if (text && !current.has(p)) current.set(p, text);
        stack.push({ indent, name: key[2] });
      }
      if (t && !t.startsWith('*')) pending = [];
    }
  }
  return byConst;
}

function typeOf(s) {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'any'}[]`;
  if (s.type === 'object') return s.properties ? 'object' : 'map';
  return s.type ?? 'any';
}

function bounds(s) {
  const b = [];
  if (s.minimum !== undefined) b.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) b.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined) b.push(`length ≥ ${s.minLength}`);
  if (s.maxLength !== undefined) b.push(`length ≤ ${s.maxLength}`);
  if (s.minItems !== undefined) b.push(`≥ ${s.minItems} items`);
  if (s.pattern !== undefined) b.push(`matches \`${s.pattern}\``);
  return b.join(', ');
}

const cell = (v) => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');

function rows(schema, prefix, docs, rel, out) {
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    const p = prefix ? `${prefix}.${k}` : k;
    const r = rel ? `${rel}.${k}` : k;
    const optional = !(schema.required ?? []).includes(k) && s.default === undefined;
    const def = s.default === undefined ? (optional ? '(unset)' : '(required)') : `\`${JSON.stringify(s.default)}\``;
    const doc = docs?.get(r) ?? s.description ?? '';
    if (s.type === 'object' && s.properties) {
      out.push(`| \`${p}\` | object | ${s.default === undefined ? def : ''} | ${cell(doc)} |`);
      rows(s, p, docs, r, out);
    } else if (s.anyOf && s.anyOf.every((x) => x.type === 'object' && x.properties)) {
      out.push(`| \`${p}\` | one of ${s.anyOf.length} forms | ${def} | ${cell(doc)} |`);
      s.anyOf.forEach((x, i) => rows(x, `${p}`, docs, r, out));
    } else {
      const b = bounds(s);
      out.push(`| \`${p}\` | ${typeOf(s)}${b ? ` (${cell(b)})` : ''} | ${cell(def)} | ${cell(doc)} |`);
    }
  }
}

function render() {
  const docs = comments();
  const constByKey = new Map();
  const schemaSrc = fs.readFileSync(path.join(ROOT, 'src', 'config', 'schema.ts'), 'utf8');
  for (const m of schemaSrc.matchAll(/^\s+(\w+): (\w+Section),$/gm)) constByKey.set(m[1], m[2]);
  const out = [
    '# Configuration',
    '',
    'Generated by `node scripts/gen-config-doc.mjs` from the schema (`src/config/schema.ts` and',
    '`src/config/sections/`); `npm run lint` fails when this file is out of date.',
    '',
    'One file, `<data dir>/config.json`, validated at start: an unknown key or a value out of bounds stops',
    'the appliance with `CONFIG_INVALID` (exit 2) naming the key. Environment',
    'variables override single values (`COFFRE_PORT`, `COFFRE_HOST`, `COFFRE_PUBLIC_URL`, `COFFRE_LOG_LEVEL`, and',
    '`COFFRE_CFG_<section>__<key>[__<key>…]=<JSON or string>` for any key: `src/config/load.ts`). Relative paths (keys named `file`, `dir`, or ending in `File` or',
    '`Dir`) are resolved against the data dir. Secrets are never values here, only paths to files that',
    'hold them. Defaults below apply when a key is absent.',
    '',
  ];
  for (const [key, schema] of Object.entries(sections)) {
    out.push(`## \`${key}\``, '');
    out.push('| Key | Type | Default | What it does |', '|---|---|---|---|');
    const list = [];
    if (schema.anyOf) {
      // a section with several forms (database: sqlite or postgres): each form's keys, by its `type`
      for (const form of schema.anyOf)
        (list.push(
          `| \`${key}\` (\`type: ${JSON.stringify(form.properties?.type?.const)}\`) | object | ${schema.default ? `\`${JSON.stringify(schema.default)}\`` : ''} | |`,
        ),
          rows(form, key, docs.get(constByKey.get(key)), '', list));
    } else rows(schema, key, docs.get(constByKey.get(key)), '', list);
    out.push(...list, '');
  }
  return out.join('\n');
}

const text = render();
if (process.argv.includes('--check')) {
  const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (current !== text) {
    console.error(
      'docs/config.md is out of date with the configuration schema: run `npm run build && node scripts/gen-config-doc.mjs` and commit it',
    );
    process.exit(1);
  }
} else {
  fs.writeFileSync(OUT, text);
  console.log(`docs/config.md: ${text.split('\n').filter((l) => l.startsWith('| `')).length} keys`);
}
