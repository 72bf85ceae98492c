/**
 * The OpenPGP codec of backup parts: one complete OpenPGP message per part (RFC 4880), readable
 * by stock GnuPG 2.2 and by OpenPGP.js:
 *
 *   [PKESK v3 to each escrow key]  (made once per backup by OpenPGP.js, see ./openpgp.ts)
 *   SEIPD v1 (tag 18) = 0x01 ‖ AES-256-CFB(IV = 0) of
 *       16 random bytes ‖ their last 2 bytes ‖ Literal Data packet (tag 11, binary) ‖ MDC (0xD3 0x14 SHA-1)
 *
 * Why native code rather than OpenPGP.js for the bulk: OpenPGP.js spends about twice the CPU per GiB
 * (five times as a web stream) and allocates several copies of each part, where this writes into
 * recycled buffers (figures: bench/RESULTS.md, "Design measurements"). OpenPGP.js makes the escrow packets; the tests
 * check every length boundary and tampering against OpenPGP.js and GnuPG reading this output.
 *
 * The reader accepts exactly what the writer produces (new-format packets, definite lengths,
 * PKESKs then one SEIPDv1): anything else is refused. A part's plaintext is released only after
 * its MDC checked.
 *
 * This file also runs as the encryption worker thread (bottom): it imports node built-ins only,
 * so Node loads it directly, compiled or as TypeScript.
 */
import crypto from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/** OpenPGP symmetric algorithm id of AES-256 (for `gpg --override-session-key 9:HEX`) */
export const AES256 = 9;
/** cipher calls are fed this much at a time: small temporaries, no large allocation per part */
const SLICE = 1 << 20;

/** new-format packet header with the shortest length encoding (RFC 4880 §4.2.2) */
export function packetHeader(tag: number, len: number): Buffer {
  const first = 0xc0 | tag;
  if (len < 192) return Buffer.from([first, len]);
  if (len < 8384) {
    const l = len - 192;
    return Buffer.from([first, (l >> 8) + 192, l & 0xff]);
  }
  if (len > 0xffffffff) throw new RangeError('packet too large');
  const b = Buffer.alloc(6);
  b[0] = first;
  b[1] = 0xff;
  b.writeUInt32BE(len, 2);
  return b;
}

/** Size of the message `encryptPart` writes for `plainLength` bytes and a `prefixLength` prefix. */
export function partSize(plainLength: number, prefixLength: number): number {
  const litLen = packetHeader(11, 6 + plainLength).length + 6 + plainLength;
  const inner = 18 + litLen + 22;
  return prefixLength + packetHeader(18, 1 + inner).length + 1 + inner;
}

/**
 * Encrypts one part into `out` (at least `partSize(...)` bytes). `prefix` holds the escrow PKESK
 * packets (may be empty); `date` is the literal packet's date (seconds). Returns the message
 * length and the SHA-256 of the message.
 */
export function encryptPart(
  key: Uint8Array,
  plaintext: Uint8Array,
  prefix: Uint8Array,
  date: number,
  out?: Uint8Array,
): { message: Buffer; sha256: string } {
  if (key.length !== 32) throw new RangeError('AES-256 needs a 32-byte key');
  const litHeader = packetHeader(11, 6 + plaintext.length);
  const litMeta = Buffer.alloc(6);
  litMeta[0] = 0x62; // 'b': binary
  litMeta[1] = 0; // no file name
  litMeta.writeUInt32BE(date >>> 0, 2);
  const random = crypto.randomBytes(16);
  const quick = Buffer.concat([random, random.subarray(14, 16)]);
  const innerLen = quick.length + litHeader.length + litMeta.length + plaintext.length + 22;
  const seipdHeader = packetHeader(18, 1 + innerLen);
  const total = prefix.length + seipdHeader.length + 1 + innerLen;
  // its own ArrayBuffer (never the shared pool), so a worker can transfer it
  const dst = out ? Buffer.from(out.buffer, out.byteOffset, out.byteLength) : Buffer.from(new ArrayBuffer(total));
  if (dst.length < total) throw new RangeError(`output buffer too small: ${dst.length} < ${total}`);
  let at = 0;
  const put = (b: Uint8Array) => {
    dst.set(b, at);
    at += b.length;
  };
  put(prefix);
  put(seipdHeader);
  dst[at++] = 1; // SEIPD version 1
  const mdc = crypto.createHash('sha1');
  const cipher = crypto.createCipheriv('aes-256-cfb', key, Buffer.alloc(16));
  const enc = (b: Uint8Array) => {
    for (let off = 0; off < b.length; off += SLICE) {
      const s = b.subarray(off, Math.min(off + SLICE, b.length));
      mdc.update(s);
      put(cipher.update(s));
    }
  };
  enc(quick);
  enc(litHeader);
  enc(litMeta);
  enc(plaintext);
  enc(Buffer.from([0xd3, 0x14]));
  put(cipher.update(mdc.digest()));
  put(cipher.final());
  if (at !== total) throw new Error(`internal: encoded ${at} of ${total} bytes`);
  const message = dst.subarray(0, total);
  return { message, sha256: crypto.createHash('sha256').update(message).digest('hex') };
}

export class PartFormatError extends Error {}

/** dst[at, at + len) ^= src[0, len): 32 bits at a time where both are aligned */
function xorInto(dst: Uint8Array, at: number, src: Uint8Array, len: number): void {
  let i = 0;
  const d = dst.byteOffset + at;
  if ((d & 3) === 0 && (src.byteOffset & 3) === 0) {
    const words = len >>> 2;
    const a = new Int32Array(dst.buffer, d, words);
    const b = new Int32Array(src.buffer, src.byteOffset, words);
    for (let k = 0; k < words; k++) a[k]! ^= b[k]!;
    i = words << 2;
  }
  for (; i < len; i++) dst[at + i]! ^= src[i]!;
}

/**
 * AES-256-CFB decryption with a zero IV (RFC 4880 §5.13: SEIPD's CFB, no resynchronisation) of
 * `ct` into `pt` (same length, not overlapping). CFB decryption is P_i = E(C_{i-1}) ⊕ C_i with
 * C_{-1} = IV: unlike encryption, every block's AES is independent of the others, so it runs as
 * AES-ECB over the ciphertext shifted by one block, which OpenSSL pipelines (AES-NI), then one
 * XOR: less than half the time of OpenSSL's aes-256-cfb, whose decryption goes block after block
 * (figures: bench/RESULTS.md, "Design measurements").
 */
export function cfbDecrypt(key: Uint8Array, ct: Uint8Array, pt: Uint8Array): void {
  const n = ct.length;
  if (pt.length !== n) throw new RangeError('cfbDecrypt: output length differs');
  pt.set(ct);
  if (n === 0) return;
  const ecb = crypto.createCipheriv('aes-256-ecb', key, null);
  ecb.setAutoPadding(false);
  xorInto(pt, 0, ecb.update(Buffer.alloc(16)), Math.min(16, n));
  // the blocks that feed the keystream of blocks 1..: C_0 .. C_{last-1}, whole blocks
  const feed = Math.ceil(n / 16) * 16 - 16;
  for (let off = 0; off < feed; off += SLICE) {
    const ks = ecb.update(ct.subarray(off, Math.min(off + SLICE, feed)));
    xorInto(pt, 16 + off, ks, Math.min(ks.length, n - 16 - off));
  }
  ecb.final();
}

/** Reads a new-format packet header at `at`: [tag, body offset, body length]. Definite lengths only. */
function readHeader(b: Uint8Array, at: number): [number, number, number] {
  if (at + 2 > b.length) throw new PartFormatError('truncated packet header');
  const first = b[at]!;
  if ((first & 0xc0) !== 0xc0) throw new PartFormatError('not a new-format packet');
  const tag = first & 0x3f;
  const l0 = b[at + 1]!;
  if (l0 < 192) return [tag, at + 2, l0];
  if (l0 < 224) {
    if (at + 3 > b.length) throw new PartFormatError('truncated packet header');
    return [tag, at + 3, ((l0 - 192) << 8) + b[at + 2]! + 192];
  }
  if (l0 === 255) {
    if (at + 6 > b.length) throw new PartFormatError('truncated packet header');
    return [tag, at + 6, Buffer.from(b.buffer, b.byteOffset + at + 2, 4).readUInt32BE(0)];
  }
  throw new PartFormatError('partial body lengths are not used by this format');
}

/**
 * Decrypts one part into `out` (at least as long as the message) and returns the plaintext view
 * of it, only once the MDC matched. Throws PartFormatError on any malformation, wrong key or
 * alteration.
 */
export function decryptPart(key: Uint8Array, message: Uint8Array, out?: Uint8Array): Uint8Array {
  let at = 0;
  for (;;) {
    const [tag, body, len] = readHeader(message, at);
    if (body + len > message.length) throw new PartFormatError('truncated packet');
    if (tag === 1) {
      at = body + len; // an escrow PKESK: not ours to open
      continue;
    }
    if (tag !== 18) throw new PartFormatError(`unexpected packet tag ${tag}`);
    if (body + len !== message.length) throw new PartFormatError('trailing data after the encrypted packet');
    if (message[body] !== 1) throw new PartFormatError('not a version 1 SEIPD packet');
    const ct = message.subarray(body + 1, body + len);
    if (ct.length < 18 + 22) throw new PartFormatError('encrypted packet too short');
    const pt = out ? out.subarray(0, ct.length) : new Uint8Array(ct.length);
    if (pt.length < ct.length) throw new RangeError('output buffer too small');
    cfbDecrypt(key, ct, pt);
    if (pt[14] !== pt[16] || pt[15] !== pt[17]) throw new PartFormatError('wrong session key');
    const mdcAt = pt.length - 22;
    if (pt[mdcAt] !== 0xd3 || pt[mdcAt + 1] !== 0x14) throw new PartFormatError('integrity check packet missing');
    const digest = crypto
      .createHash('sha1')
      .update(pt.subarray(0, mdcAt + 2))
      .digest();
    if (!crypto.timingSafeEqual(digest, pt.subarray(mdcAt + 2, mdcAt + 22)))
      throw new PartFormatError('integrity check failed');
    const lit = pt.subarray(18, mdcAt);
    const [ltag, lbody, llen] = readHeader(lit, 0);
    if (ltag !== 11 || lbody + llen !== lit.length || llen < 6 || lit[lbody] !== 0x62 || lit[lbody + 1] !== 0)
      throw new PartFormatError('unexpected literal data packet');
    return lit.subarray(lbody + 6);
  }
}

/**
 * Messages between the pool (./pool.ts) and a worker: buffers travel both ways, never copied.
 * `encrypt`: input is plaintext, the message goes to `out[0, length)`. `decrypt`: input is a
 * message whose SHA-256 must be `sha256`; the plaintext is `out[offset, offset + length)`.
 */
export type WorkerRequest = {
  id: number;
  op: 'encrypt' | 'decrypt';
  input: ArrayBuffer;
  length: number;
  out: ArrayBuffer;
  sha256?: string;
};
export type WorkerReply =
  | {
      id: number;
      input: ArrayBuffer;
      out: ArrayBuffer;
      offset: number;
      length: number;
      sha256: string;
      error?: undefined;
    }
  | { id: number; input: ArrayBuffer; out: ArrayBuffer; error: string; kind: 'hash' | 'format' | 'other' };

/** Runs one request (in a worker, or inline). */
export function runRequest(key: Uint8Array, prefix: Uint8Array, date: number, m: WorkerRequest): WorkerReply {
  const base = { id: m.id, input: m.input, out: m.out };
  try {
    if (m.op === 'encrypt') {
      const { message, sha256 } = encryptPart(
        key,
        new Uint8Array(m.input, 0, m.length),
        prefix,
        date,
        new Uint8Array(m.out),
      );
      return { ...base, offset: 0, length: message.length, sha256 };
    }
    const msg = new Uint8Array(m.input, 0, m.length);
    const sha256 = crypto.createHash('sha256').update(msg).digest('hex');
    if (sha256 !== m.sha256) return { ...base, error: 'does not match its recorded SHA-256', kind: 'hash' };
    const pt = decryptPart(key, msg, new Uint8Array(m.out));
    return { ...base, offset: pt.byteOffset, length: pt.length, sha256 };
  } catch (e) {
    return { ...base, error: (e as Error).message, kind: e instanceof PartFormatError ? 'format' : 'other' };
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'coffre-seipd') {
  const init = workerData as { role: string; key: Uint8Array; prefix: Uint8Array; date: number; collect: boolean };
  const key = Buffer.from(init.key);
  init.key.fill(0);
  const port = parentPort!;
  // Each part leaves ~1× its size of cipher temporaries. V8 only collects them once ~64 MB of
  // external memory piled up, per thread; a young-generation collection after each part keeps
  // every worker within a few MB (figures: bench/RESULTS.md, "Design measurements").
  // (only with the memory tuning on: src/runtime/memory.ts decides, in `collect`)
  let gc: ((o: { type: 'minor' }) => void) | undefined;
  if (init.collect) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as (o: { type: 'minor' }) => void;
  }
  port.on('message', (m: WorkerRequest | 'wipe') => {
    if (m === 'wipe') {
      key.fill(0);
      port.close();
      return;
    }
    port.postMessage(runRequest(key, init.prefix, init.date, m), [m.input, m.out]);
    gc?.({ type: 'minor' });
  });
}
