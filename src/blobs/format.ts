import crypto from 'node:crypto';
import { blobErrors } from './errors.js';

/**
 * Encrypted blob format, version 1 (docs/formats.md "Encrypted blob").
 *
 *     header  = "COFB" | version u8 = 1 | algorithm u8 = 1 (AES-256-GCM STREAM) | header length u16
 *               | chunk size u32 | nonce prefix [7] | key id length u8 | key id (ASCII)
 *               | object id length u16 | object id (UTF-8) | object version u32      (big-endian)
 *     chunk i = AES-256-GCM(DEK, nonce = prefix ‖ i (u32) ‖ 0x00, aad = header)(plaintext i) ‖ tag[16]
 *     end     = AES-256-GCM(DEK, nonce = prefix ‖ n (u32) ‖ 0x01, aad = header)(empty) = tag[16]
 *
 * n data chunks (n ≥ 0), each of exactly `chunk size` plaintext bytes except the last one, which
 * holds 1..chunk size; then the end chunk: the STREAM construction's "last" segment, always empty.
 * Every data chunk is sealed as "not last", so writers encrypt and release each chunk as the input
 * streams by (no buffering, no copy, nothing encrypted twice) and only the 16-byte end chunk waits
 * for the end of the input. The stored size alone gives the number of chunks and the plaintext
 * size, so a chunk is found by arithmetic (random access) and memory is one chunk whatever the size.
 */
export const MAGIC = Buffer.from('COFB', 'ascii');
export const FORMAT_VERSION = 1;
export const ALG_AES256GCM_STREAM = 1;
export const TAG_BYTES = 16;
export const PREFIX_BYTES = 7;
export const NONCE_BYTES = 12;
export const MIN_CHUNK = 4096;
export const MAX_CHUNK = 16 * 1024 * 1024;
export const DEFAULT_CHUNK = 1024 * 1024;
const FIXED = 4 + 1 + 1 + 2 + 4 + PREFIX_BYTES + 1;
/** the longest possible header (255-byte key id, 1024-byte object id) */
export const MAX_HEADER = FIXED + 255 + 2 + 1024 + 4;

export interface BlobHeader {
  chunkSize: number;
  noncePrefix: Buffer;
  keyId: string;
  objectId: string;
  version: number;
  /** the serialized header: the AAD of every chunk */
  bytes: Buffer;
}

export interface ObjectRef {
  objectId: string;
  version: number;
}

export function makeHeader(o: ObjectRef & { keyId: string; chunkSize?: number; noncePrefix?: Buffer }): BlobHeader {
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK)
    throw blobErrors.usage(`chunk size must be between ${MIN_CHUNK} and ${MAX_CHUNK}`);
  const key = Buffer.from(o.keyId, 'ascii');
  const obj = Buffer.from(o.objectId, 'utf8');
  if (key.length === 0 || key.length > 255) throw blobErrors.usage('key id must be 1 to 255 ASCII bytes');
  if (obj.length === 0 || obj.length > 1024) throw blobErrors.usage('object id must be 1 to 1024 bytes');
  if (!Number.isInteger(o.version) || o.version < 0 || o.version > 0xffffffff)
    throw blobErrors.usage('object version must be a 32-bit unsigned integer');
  const noncePrefix = o.noncePrefix ?? crypto.randomBytes(PREFIX_BYTES);
  const len = FIXED + key.length + 2 + obj.length + 4;
  const b = Buffer.alloc(len);
  let p = 0;
  p += MAGIC.copy(b, p);
  b[p++] = FORMAT_VERSION;
  b[p++] = ALG_AES256GCM_STREAM;
  p = b.writeUInt16BE(len, p);
  p = b.writeUInt32BE(chunkSize, p);
  p += noncePrefix.copy(b, p);
  b[p++] = key.length;
  p += key.copy(b, p);
  p = b.writeUInt16BE(obj.length, p);
  p += obj.copy(b, p);
  b.writeUInt32BE(o.version, p);
  return { chunkSize, noncePrefix, keyId: o.keyId, objectId: o.objectId, version: o.version, bytes: b };
}

/** Bytes needed to know the header length (then `headerLength` bytes to parse it). */
export const HEADER_PROBE = 8;

export function headerLength(first: Buffer): number {
  if (first.length < HEADER_PROBE || !first.subarray(0, 4).equals(MAGIC))
    throw blobErrors.integrity('not an encrypted blob (bad magic)');
  if (first[4] !== FORMAT_VERSION) throw blobErrors.integrity(`unsupported blob format version ${first[4]}`);
  if (first[5] !== ALG_AES256GCM_STREAM) throw blobErrors.integrity(`unsupported blob algorithm ${first[5]}`);
  const len = first.readUInt16BE(6);
  if (len < FIXED + 1 + 2 + 1 + 4) throw blobErrors.integrity('blob header is truncated');
  return len;
}

/**
 * Parses a header. The header is authenticated only when the first chunk verifies (it is the AAD);
 * the object id and version are checked against what the caller expects, so a whole blob moved to
 * another object's row is refused before any key is fetched.
 */
export function parseHeader(b: Buffer, expect: ObjectRef): BlobHeader {
  const len = headerLength(b);
  if (b.length < len) throw blobErrors.integrity('blob header is truncated');
  const h = b.subarray(0, len);
  let p = 8;
  const chunkSize = h.readUInt32BE(p);
  p += 4;
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK)
    throw blobErrors.integrity('blob header has an invalid chunk size');
  const noncePrefix = Buffer.from(h.subarray(p, p + PREFIX_BYTES));
  p += PREFIX_BYTES;
  const kl = h[p++]!;
  if (p + kl + 2 > len) throw blobErrors.integrity('blob header is malformed');
  const keyId = h.toString('ascii', p, p + kl);
  p += kl;
  const ol = h.readUInt16BE(p);
  p += 2;
  if (p + ol + 4 !== len) throw blobErrors.integrity('blob header is malformed');
  const objectId = h.toString('utf8', p, p + ol);
  p += ol;
  const version = h.readUInt32BE(p);
  if (objectId !== expect.objectId || version !== expect.version) {
    throw blobErrors.integrity('blob belongs to another object or version (spliced or misfiled)');
  }
  return { chunkSize, noncePrefix, keyId, objectId, version, bytes: Buffer.from(h) };
}

/**
 * Data chunks and plaintext size of a stored blob of `storedSize` bytes (the end chunk, 16 bytes,
 * is chunk number `chunks`).
 */
export function layout(
  h: { chunkSize: number; bytes: Buffer },
  storedSize: number,
): { chunks: number; plaintextSize: number } {
  const data = storedSize - h.bytes.length - TAG_BYTES;
  const frame = h.chunkSize + TAG_BYTES;
  const rem = data % frame;
  if (data < 0 || (rem > 0 && rem <= TAG_BYTES)) throw blobErrors.integrity('encrypted blob is truncated');
  const chunks = Math.floor(data / frame) + (rem ? 1 : 0);
  return { chunks, plaintextSize: data - chunks * TAG_BYTES };
}

/** Writes the nonce of chunk `i` into `out` (12 bytes, reused: no allocation per chunk). */
export function nonceInto(out: Buffer, prefix: Buffer, i: number, last: boolean): Buffer {
  if (i > 0xffffffff) throw blobErrors.usage('blob too large: more than 2^32 chunks');
  prefix.copy(out, 0);
  out.writeUInt32BE(i, PREFIX_BYTES);
  out[NONCE_BYTES - 1] = last ? 1 : 0;
  return out;
}

export const chunkError = (i: number) =>
  blobErrors.integrity(
    `encrypted blob chunk ${i} failed authentication: altered, reordered, truncated or from another object; no data of it was released`,
  );
