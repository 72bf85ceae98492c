import { vaultErrors } from './errors.js';

/** An inclusive byte range of the plaintext, as in `Content-Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header (RFC 9110 §14.2) against a representation of `size` bytes.
 * - absent, or not a `bytes` range, or several ranges: `null` (the whole content is sent, as the
 *   RFC allows a server to ignore Range);
 * - one satisfiable range: that range, clipped to the content;
 * - unsatisfiable (starts at or past the end, or empty content, or a zero-length suffix):
 *   RANGE_NOT_SATISFIABLE (416);
 * - syntactically invalid: ignored (`null`), as the RFC says.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return null;
  const specs = m[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (specs.length !== 1) return null;
  const spec = specs[0]!;
  const r = /^(\d*)-(\d*)$/.exec(spec);
  if (!r || (r[1] === '' && r[2] === '')) return null;
  if (r[1] === '') {
    // suffix: the last N bytes
    const n = Number(r[2]);
    if (!Number.isSafeInteger(n)) return null;
    if (n === 0 || size === 0) throw vaultErrors.rangeNotSatisfiable(size);
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(r[1]);
  const end = r[2] === '' ? size - 1 : Number(r[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return null;
  if (r[2] !== '' && end < start) return null;
  if (start >= size) throw vaultErrors.rangeNotSatisfiable(size);
  return { start, end: Math.min(end, size - 1) };
}

/** The chunks of a chunked blob that hold plaintext bytes [start, end] (inclusive). */
export interface ChunkSpan {
  firstChunk: number;
  lastChunk: number;
  /** bytes to drop from the start of the first chunk's plaintext */
  skip: number;
  /** bytes to send in total */
  length: number;
}

export function chunkSpan(r: ByteRange, chunkSize: number): ChunkSpan {
  if (!(chunkSize > 0)) throw new RangeError('chunk size must be positive');
  const firstChunk = Math.floor(r.start / chunkSize);
  const lastChunk = Math.floor(r.end / chunkSize);
  return { firstChunk, lastChunk, skip: r.start - firstChunk * chunkSize, length: r.end - r.start + 1 };
}
