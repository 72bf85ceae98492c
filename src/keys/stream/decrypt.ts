import crypto, { type DecipherGCM, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { keysErrors } from '../errors.js';
import { HEADER_PROBE, NONCE_BYTES, TAG_BYTES, chunkError, headerLength, nonceInto, parseHeader, type BlobHeader, type ObjectRef } from './format.js';

export interface DecryptOptions {
  /** the object and version the caller's database says this blob is */
  expect: ObjectRef;
  /** the data key by id (DataKeys.get): a copy, wiped here once turned into a KeyObject */
  getKey(keyId: string): Promise<Buffer>;
  /** when the caller also recorded the key id, it must match the header's */
  keyId?: string;
  /**
   * Random access: the input starts at chunk `firstChunk` (not at the header, which is given) and
   * the blob has `totalChunks` chunks; output starts `skip` bytes into that chunk and is `take`
   * bytes long.
   */
  range?: { header: BlobHeader; firstChunk: number; totalChunks: number; skip: number; take: number };
}

/**
 * Encrypted blob in, plaintext out. A chunk's plaintext is released only after its tag verified.
 * Full chunks are never last (format.ts), so they are decrypted as "not last" while they stream by
 * (their plaintext held, at most one chunk, until the tag checks); the final partial chunk is
 * opened as last at the end of input. Truncation, reordering, and splicing from another object or
 * version all fail authentication: KEYS_INTEGRITY, and the stream ends.
 */
export class DecryptStream extends Transform {
  private header: BlobHeader | undefined;
  private key: KeyObject | undefined;
  private F = 0;
  private C = 0;
  private d: DecipherGCM | undefined;
  private fed = 0;
  private heldIn: Buffer[] = [];
  private heldOut: Buffer[] = [];
  private tag: Buffer[] = [];
  private i: number;
  private pre: Buffer[] = [];
  private preLen = 0;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private skip: number;
  private left: number;

  constructor(private readonly o: DecryptOptions) {
    super({ highWaterMark: (o.range?.header.chunkSize ?? 1 << 20) + TAG_BYTES });
    this.i = o.range?.firstChunk ?? 0;
    this.skip = o.range?.skip ?? 0;
    this.left = o.range?.take ?? Number.POSITIVE_INFINITY;
    if (o.range) this.header = o.range.header;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.key) {
      this.pre.push(chunk);
      this.preLen += chunk.length;
      this.begin().then(
        (rest) => {
          if (rest === undefined) return cb();
          try {
            if (rest.length) this.consume(rest);
            cb();
          } catch (e) {
            cb(e as Error);
          }
        },
        (e: unknown) => cb(e as Error),
      );
      return;
    }
    try {
      this.consume(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.key) throw keysErrors.integrity('encrypted blob is truncated (no complete header)');
      const globalLast = this.o.range ? this.i === this.o.range.totalChunks - 1 : true;
      // a range that ended on a full chunk (verified as "not last": the global last chunk would
      // have failed that), after at least one chunk; `i` then already points past it
      const rangeDone = this.o.range !== undefined && this.fed === 0 && this.i > this.o.range.firstChunk;
      if (rangeDone) {
        // nothing pending: every chunk of the range verified
      } else {
        // the last chunk: 0..C-1 bytes and its tag; anything else is a truncation
        if (!globalLast || this.fed < TAG_BYTES || this.fed >= this.F) throw keysErrors.integrity('encrypted blob is truncated');
        this.heldOut = [];
        const frame = Buffer.concat(this.heldIn, this.fed);
        const d = this.newDecipher(true);
        d.setAuthTag(frame.subarray(this.fed - TAG_BYTES));
        const pt = d.update(frame.subarray(0, this.fed - TAG_BYTES));
        this.verify(d, [pt]);
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    for (const b of this.heldOut) b.fill(0);
    this.heldOut = [];
    this.heldIn = [];
    cb(err);
  }

  /** Parses the header once enough bytes arrived, fetches the key; returns the bytes after it. */
  private async begin(): Promise<Buffer | undefined> {
    let rest: Buffer;
    if (!this.header) {
      if (this.preLen < HEADER_PROBE) return undefined;
      const all = Buffer.concat(this.pre, this.preLen);
      const len = headerLength(all);
      if (all.length < len) {
        this.pre = [all];
        return undefined;
      }
      this.header = parseHeader(all, this.o.expect);
      rest = all.subarray(len);
    } else {
      rest = Buffer.concat(this.pre, this.preLen);
    }
    this.pre = [];
    this.preLen = 0;
    if (this.o.keyId !== undefined && this.o.keyId !== this.header.keyId) throw keysErrors.integrity('blob names another data key than its record');
    const raw = await this.o.getKey(this.header.keyId);
    this.key = crypto.createSecretKey(raw);
    raw.fill(0);
    this.C = this.header.chunkSize;
    this.F = this.C + TAG_BYTES;
    return rest;
  }

  private consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.fed < this.C) {
        this.d ??= this.newDecipher(false);
        const n = Math.min(this.C - this.fed, chunk.length - off);
        const piece = n === chunk.length ? chunk : chunk.subarray(off, off + n);
        this.heldIn.push(piece);
        this.heldOut.push(this.d.update(piece));
        this.fed += n;
        off += n;
      } else {
        const n = Math.min(this.F - this.fed, chunk.length - off);
        const piece = chunk.subarray(off, off + n);
        this.heldIn.push(piece);
        this.tag.push(piece);
        this.fed += n;
        off += n;
        if (this.fed === this.F) {
          // a full chunk: never the last one
          this.d!.setAuthTag(this.tag.length === 1 ? this.tag[0]! : Buffer.concat(this.tag));
          this.verify(this.d!, this.heldOut);
        }
      }
    }
  }

  /** Checks the tag, then (and only then) releases the chunk's plaintext, windowed to the range. */
  private verify(d: DecipherGCM, out: Buffer[]): void {
    const i = this.i;
    try {
      d.final();
    } catch {
      for (const b of out) b.fill(0);
      throw chunkError(i);
    }
    for (let pt of out) {
      if (this.skip) {
        const s = Math.min(this.skip, pt.length);
        pt = pt.subarray(s);
        this.skip -= s;
      }
      if (pt.length > this.left) pt = pt.subarray(0, this.left);
      this.left -= pt.length;
      if (pt.length) this.push(pt);
    }
    this.i++;
    this.fed = 0;
    this.d = undefined;
    this.heldIn = [];
    this.heldOut = [];
    this.tag = [];
  }

  private newDecipher(last: boolean): DecipherGCM {
    const h = this.header!;
    const d = crypto.createDecipheriv('aes-256-gcm', this.key!, nonceInto(this.nonce, h.noncePrefix, this.i, last), { authTagLength: TAG_BYTES });
    d.setAAD(h.bytes);
    return d;
  }
}
