import { vaultErrors } from './errors.js';
import { hasInvisibleFormat } from '../shared/text.js';

/** Longest document or folder name, in code points. */
export const MAX_NAME = 255;
export const MAX_TAG = 64;
export const MAX_TAGS = 50;
export const MAX_DESCRIPTION = 4000;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes bytes as strict UTF-8; throws INVALID_NAME on a malformed sequence. */
export function strictUtf8(b: Uint8Array, what = 'name'): string {
  try {
    return utf8.decode(b);
  } catch {
    throw vaultErrors.invalidName(what, 'is not valid UTF-8');
  }
}

/**
 * Percent-decodes a query or form value as strict UTF-8 (`decodeURIComponent` throws on a
 * malformed sequence, unlike the lenient decoders that put U+FFFD in).
 */
export function decodeComponent(s: string, what = 'name'): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw vaultErrors.invalidName(what, 'is not valid percent-encoded UTF-8');
  }
}

// C0 controls, DEL, C1 controls; and Unicode line/paragraph separators, bidi overrides that make
// a name display as something else (e.g. "invoice\u202Efdp.exe").
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * Validates and normalises (NFC) a document or folder name. Names are labels, not paths: `/`,
 * `\`, `.` and `..` are refused so a name can never climb out of a directory it is saved into.
 * U+FFFD is refused too: it is what lenient decoders put in place of invalid UTF-8.
 */
export function checkName(raw: unknown, what = 'name'): string {
  if (typeof raw !== 'string') throw vaultErrors.invalidName(what, 'must be a string');
  if (!raw.isWellFormed()) throw vaultErrors.invalidName(what, 'is not valid Unicode (lone surrogate)');
  if (raw.includes('\uFFFD')) throw vaultErrors.invalidName(what, 'is not valid UTF-8 (contains U+FFFD)');
  const name = raw.normalize('NFC');
  const len = [...name].length;
  if (len === 0) throw vaultErrors.invalidName(what, 'is empty');
  if (len > MAX_NAME) throw vaultErrors.invalidName(what, `is ${len} characters long (at most ${MAX_NAME})`);
  if (name.includes('\u0000')) throw vaultErrors.invalidName(what, 'contains NUL');
  if (FORBIDDEN.test(name)) throw vaultErrors.invalidName(what, 'contains a control character');
  if (hasInvisibleFormat(name))
    throw vaultErrors.invalidName(what, 'contains an invisible format character (zero-width or direction mark)');
  if (name.includes('/') || name.includes('\\')) throw vaultErrors.invalidName(what, 'contains / or \\');
  if (name === '.' || name === '..') throw vaultErrors.invalidName(what, 'is "." or ".."');
  if (name.trim() !== name) throw vaultErrors.invalidName(what, 'starts or ends with white space');
  return name;
}

/** Tags: like names but at most 64 characters; at most 50 per document, duplicates removed. */
export function checkTags(raw: unknown): string[] {
  if (!Array.isArray(raw)) throw vaultErrors.invalidInput('tags must be an array of strings');
  if (raw.length > MAX_TAGS) throw vaultErrors.invalidInput(`at most ${MAX_TAGS} tags`);
  const out = new Set<string>();
  for (const t of raw) {
    const tag = checkName(t, 'tag');
    if ([...tag].length > MAX_TAG) throw vaultErrors.invalidName('tag', `is longer than ${MAX_TAG} characters`);
    out.add(tag);
  }
  return [...out];
}

export function checkDescription(raw: unknown): string {
  if (typeof raw !== 'string') throw vaultErrors.invalidInput('description must be a string');
  if (!raw.isWellFormed() || raw.includes('\uFFFD')) throw vaultErrors.invalidName('description', 'is not valid UTF-8');
  const d = raw.normalize('NFC');
  if (d.includes('\u0000')) throw vaultErrors.invalidName('description', 'contains NUL');
  if ([...d].length > MAX_DESCRIPTION)
    throw vaultErrors.invalidInput(`description longer than ${MAX_DESCRIPTION} characters`);
  return d;
}

/** A media type as given by the client; anything else is stored as application/octet-stream. */
export function checkMediaType(raw: string | undefined): string {
  if (!raw) return 'application/octet-stream';
  const t = raw.split(';')[0]!.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$/.test(t) ? t : 'application/octet-stream';
}
