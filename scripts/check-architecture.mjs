#!/usr/bin/env node
// Checks the import rules of .dependency-cruiser.cjs (see docs/architecture.md) with dependency-cruiser,
// allowing only its named exceptions. Usage: node scripts/check-architecture.mjs [path...] (default: src).
// Exits 1 on a violation, or on an exception that matches nothing when the whole of src is checked.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { exceptions } = require(join(root, '.dependency-cruiser.cjs'));
const bin = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');
const paths = process.argv.slice(2);

const run = spawnSync(
  process.execPath,
  [bin, ...(paths.length ? paths : ['src']), '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
  { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
);
let result;
try {
  result = JSON.parse(run.stdout);
} catch {
  process.stderr.write(run.stderr || 'dependency-cruiser produced no report\n');
  process.exit(2);
}

const used = new Set();
const violations = result.summary.violations.filter((v) => {
  const ex = exceptions.find(
    (e) => e.rule === v.rule.name && new RegExp(e.from).test(v.from) && new RegExp(e.to).test(v.to),
  );
  if (ex) used.add(ex.name);
  return !ex;
});
for (const v of violations) {
  const cycle = v.cycle?.length ? ` (cycle: ${v.cycle.map((c) => c.name ?? c).join(' -> ')})` : '';
  console.log(`${v.rule.name}: ${v.from} -> ${v.to}${cycle}`);
}
const stale = paths.length ? [] : exceptions.filter((e) => !used.has(e.name));
for (const e of stale)
  console.log(`unused exception: ${e.name} (remove it from .dependency-cruiser.cjs and docs/architecture.md)`);
console.log(
  `architecture: ${result.summary.totalCruised} modules, ${violations.length} violation(s), ` +
    `${result.summary.violations.length - violations.length} allowed by ${used.size} named exception(s)`,
);
process.exit(violations.length || stale.length ? 1 : 0);
