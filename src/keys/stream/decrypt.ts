import crypto, { type DecipherGCM, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { keysErrors } from '../errors.js';
import { release } from '../../shared/buffers.js';
import { HEADER_PROBE, NONCE_BYTES, TAG_BYTES, chunkError, headerLength, nonceInto, parseHeader, type BlobHeader, type ObjectRef } from './format.js';

export interface DecryptOptions {
  /** the object and version the caller's database says this blob is */
  expect: ObjectRef;
  /** the data key by id (DataKeys.get): a copy, wiped here once turned into a KeyObject */
  getKey(keyId: string): Promise<Buffer>;
  /** when the caller also recorded the key id, it must match the header's */
  keyId?: string;
  /**
   * Random access: the input starts at data chunk `firstChunk` (not at the header, which is
   * given); it runs to the end of the blob (`toEnd`: the last data chunk and the end chunk) or
   * stops after a full chunk. Output starts `skip` bytes into the first chunk, `take` bytes long.
   */
  range?: { header: BlobHeader; firstChunk: number; toEnd: boolean; skip: number; take: number };
  /**
   * The input pieces are this stream's alone (a file read stream opened for it): a piece that
   * is one whole chunk is freed (detached) once opened, instead of at V8's next collection.
   */
  consumeInput?: boolean;
}

const TAIL = 2 * TAG_BYTES;


/**
 * Encrypted blob in, plaintext out. A chunk's plaintext is released only after its tag verified:
 * its ciphertext is held (references, at most one chunk) until the tag arrives, then decrypted and
 * its plaintext pushed only once the tag verified (on the calling thread: AES-GCM runs at ~3 GB/s,
 * a 1 MiB chunk takes a third of a millisecond; the thread pool's copies and hops cost more than
 * they saved). Input pieces that are whole chunks (ciphertext ‖ tag, as FsBlobStore reads them when told
 * the frame size) are opened without a copy; the last 32 bytes of input are held back, since at the end of the input they are the last
 * data chunk's tag and the end chunk. The end chunk (sealed as "last", with the number of data
 * chunks in its nonce) must verify, so truncation, reordering and splicing from another object or
 * version all fail: KEYS_INTEGRITY, and the stream ends.
 */
export class DecryptStream extends Transform {
  private header: BlobHeader | undefined;
  private key: KeyObject | undefined;
  private C = 0;
  private fed = 0;
  /** ciphertext of the current chunk (references into the input), decrypted once its tag is here */
  private held: Buffer[] = [];
  private i: number;
  private pending: Buffer[] = [];
  private pendLen = 0;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private skip: number;
  private left: number;
  /** bytes held back: the possible last tag and end chunk, unless a range stops before them */
  private readonly tail: number;

  constructor(private readonly o: DecryptOptions) {
    super({ highWaterMark: (o.range?.header.chunkSize ?? 1 << 20) + TAG_BYTES });
    this.i = o.range?.firstChunk ?? 0;
    this.skip = o.range?.skip ?? 0;
    this.left = o.range?.take ?? Number.POSITIVE_INFINITY;
    this.tail = o.range && !o.range.toEnd ? 0 : TAIL;
    if (o.range) this.header = o.range.header;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.add(chunk);
    if (!this.key) {
      this.begin().then(
        (ready) => {
          try {
            if (ready) this.drain();
          } catch (e) {
            cb(e as Error);
            return;
          }
          cb();
        },
        (e: unknown) => cb(e as Error),
      );
      return;
    }
    try {
      this.drain();
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.key) throw keysErrors.integrity('encrypted blob is truncated (no complete header)');
      if (this.tail !== 0 && this.fed > 0 && this.fed < this.C && this.pendLen === TAIL) {
        // the last data chunk was partial: what is left is its tag, then the end chunk
        this.open(this.takeBytes(TAG_BYTES));
      }
    } catch (e) {
      cb(e as Error);
      return;
    }
    // every data chunk verified and released before the end is checked
    this.finish(cb);
  }

  private finish(cb: TransformCallback): void {
    try {
      if (this.tail === 0) {
        // a range that stops after a full chunk
        if (this.fed !== 0 || this.pendLen !== 0) throw keysErrors.integrity('encrypted blob is truncated');
      } else {
        if (!(this.fed === 0 && this.pendLen === TAG_BYTES)) {
          throw this.fed === 0 && this.pendLen < TAG_BYTES ? keysErrors.integrity('encrypted blob is truncated') : chunkError(this.i);
        }
        const end = this.newDecipher(true);
        end.setAuthTag(this.takeBytes(TAG_BYTES));
        end.update(Buffer.alloc(0));
        try {
          end.final();
        } catch {
          throw keysErrors.integrity(`encrypted blob does not end after chunk ${this.i}: truncated, extended or reordered`);
        }
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.held = [];
    this.pending = [];
    cb(err);
  }

  private add(b: Buffer): void {
    if (b.length === 0) return;
    this.pending.push(b);
    this.pendLen += b.length;
  }

  /** Adds ciphertext to the current chunk, joining it to the previous piece when they are adjacent in one buffer (so a chunk read whole stays one view, however the tail was held back). */
  private hold(b: Buffer): void {
    const last = this.held[this.held.length - 1];
    if (last && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
      this.held[this.held.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + b.length);
    } else {
      this.held.push(b);
    }
  }

  /** Removes and returns `n` bytes from the front of the pending input (n ≤ pendLen). */
  private takeBytes(n: number): Buffer {
    const first = this.pending[0]!;
    let r: Buffer;
    if (first.length >= n) {
      r = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
    } else {
      r = Buffer.allocUnsafe(n);
      let o = 0;
      while (o < n) {
        const p = this.pending[0]!;
        const k = Math.min(p.length, n - o);
        p.copy(r, o, 0, k);
        o += k;
        if (k === p.length) this.pending.shift();
        else this.pending[0] = p.subarray(k);
      }
    }
    this.pendLen -= n;
    return r;
  }

  /** Parses the header once enough bytes arrived and fetches the key; false while waiting. */
  private async begin(): Promise<boolean> {
    if (!this.header) {
      if (this.pendLen < HEADER_PROBE) return false;
      const all = Buffer.concat(this.pending, this.pendLen);
      this.pending = [all];
      const len = headerLength(all);
      if (all.length < len) return false;
      this.header = parseHeader(all, this.o.expect);
      this.takeBytes(len);
    }
    if (this.o.keyId !== undefined && this.o.keyId !== this.header.keyId) throw keysErrors.integrity('blob names another data key than its record');
    const raw = await this.o.getKey(this.header.keyId);
    this.key = crypto.createSecretKey(raw);
    raw.fill(0);
    this.C = this.header.chunkSize;
    return true;
  }

  /** Decrypts what can be decrypted, keeping the last `tail` bytes back. */
  private drain(): void {
    for (;;) {
      if (this.fed < this.C) {
        const avail = this.pendLen - this.tail;
        if (avail <= 0) break;
        let n = Math.min(this.C - this.fed, avail);
        this.fed += n;
        while (n > 0) {
          const p = this.pending[0]!;
          const k = Math.min(p.length, n);
          this.hold(k === p.length ? p : p.subarray(0, k));
          if (k === p.length) this.pending.shift();
          else this.pending[0] = p.subarray(k);
          this.pendLen -= k;
          n -= k;
        }
      } else {
        // a full data chunk: its tag follows (and, unless a range stops here, the end chunk after)
        if (this.pendLen < Math.max(TAG_BYTES, this.tail)) break;
        this.open(this.takeBytes(TAG_BYTES));
      }
    }
    // the at most 32 bytes held back stay references into the producer's buffer: a producer that
    // reused it could only make the next tag fail (fail closed), never release wrong plaintext
  }

  /**
   * Opens the held chunk with its tag; its plaintext, windowed to the range, is pushed only once
   * the tag verified. A chunk that fails is never released: KEYS_INTEGRITY, after every chunk
   * before it.
   */
  private open(tag: Buffer): void {
    const held = this.held;
    this.held = [];
    const d = this.newDecipher(false);
    d.setAuthTag(tag);
    const out = held.map((c) => d.update(c));
    try {
      d.final();
    } catch {
      throw chunkError(this.i);
    } finally {
      // a whole chunk read for this stream alone (ciphertext ‖ tag in one buffer): freed now
      const one = held.length === 1 ? held[0]! : undefined;
      if (this.o.consumeInput && one && one.buffer === tag.buffer && one.byteOffset + one.length === tag.byteOffset) release(Buffer.from(one.buffer, one.byteOffset, one.length + TAG_BYTES));
    }
    this.i++;
    this.fed = 0;
    // the window of this chunk's plaintext to release
    for (const p of out) {
      const from = Math.min(this.skip, p.length);
      this.skip -= from;
      const to = Math.min(p.length, from + this.left);
      this.left -= to - from;
      if (to > from) this.push(from === 0 && to === p.length ? p : p.subarray(from, to));
    }
  }

  private newDecipher(last: boolean): DecipherGCM {
    const h = this.header!;
    const d = crypto.createDecipheriv('aes-256-gcm', this.key!, nonceInto(this.nonce, h.noncePrefix, this.i, last), { authTagLength: TAG_BYTES });
    d.setAAD(h.bytes);
    return d;
  }
}
