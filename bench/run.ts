import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `npm run bench`: runs every bench/<name>.ts (compiled to dist/bench/<name>.js) that exports
 * `default async function (): Promise<Record<string, unknown>>` and prints one JSON object.
 * `npm run bench -- keys vault` runs only those.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.js$/, '')))
  .sort();
const results: Record<string, unknown> = {
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  at: new Date().toISOString(),
};
for (const f of files) {
  const name = f.replace(/\.js$/, '');
  process.stderr.write(`bench ${name}…\n`);
  try {
    const mod = (await import(pathToFileURL(path.join(here, f)).href)) as {
      default: () => Promise<Record<string, unknown>>;
    };
    results[name] = await mod.default();
  } catch (e) {
    results[name] = { error: (e as Error).message };
  }
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
