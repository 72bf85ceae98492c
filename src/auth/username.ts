import unhomoglyph from 'unhomoglyph';
import { authErrors } from './errors.js';

/**
 * P1: usernames are unique, compared case-insensitively after Unicode NFKC normalisation.
 * `key` is what the unique index holds.
 */
export function normaliseUsername(raw: string): { display: string; key: string; skeleton: string } {
  const display = raw.normalize('NFKC').trim();
  if (display.length < 2 || display.length > 64) throw authErrors.badUsername('2 to 64 characters');
  if (!/^[\p{L}\p{N}._@-]+$/u.test(display))
    throw authErrors.badUsername('letters, digits, ".", "_", "-" and "@" only');
  // toLowerCase after NFKC, then NFKC again: case folding may produce non-normalised sequences
  const key = display.toLowerCase().normalize('NFKC');
  return { display, key, skeleton: skeletonOf(key) };
}

/**
 * P8: the UTS #39 confusable skeleton (NFD, map each character to its prototype in Unicode's
 * confusables.txt, NFD), applied to the case-folded key and repeated with case folding until it
 * no longer changes, so `аdmin` (Cyrillic а), `admın` (dotless ı) and `ADMIN` all give the
 * skeleton of `admin`. The mapping is the `unhomoglyph` package's copy of confusables.txt.
 * Never shown: it only tells whether two names look alike.
 */
export function skeletonOf(key: string): string {
  let s = key;
  for (let i = 0; i < 4; i++) {
    const next = unhomoglyph(s.normalize('NFD')).normalize('NFD').toLowerCase();
    if (next === s) break;
    s = next;
  }
  return s;
}

/** Loose e-mail check; the address is also normalised (trimmed, domain lower-cased) for its blind index. */
export function normaliseEmail(raw: string): string {
  const s = raw.normalize('NFKC').trim();
  const at = s.lastIndexOf('@');
  if (at < 1 || at === s.length - 1 || s.length > 254 || /\s/.test(s)) throw authErrors.badEmail();
  return `${s.slice(0, at)}@${s.slice(at + 1).toLowerCase()}`;
}

/** E.164-ish phone number: `+` and 6 to 15 digits, spaces and dashes removed. */
export function normalisePhone(raw: string): string {
  const s = raw.replace(/[\s().-]/g, '');
  if (!/^\+[1-9]\d{5,14}$/.test(s)) throw authErrors.badPhone();
  return s;
}
