import crypto, { type DecipherGCM, type Hash, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { blobErrors } from './errors.js';
import { release } from '../shared/buffers.js';
import {
  HEADER_PROBE,
  NONCE_BYTES,
  TAG_BYTES,
  chunkError,
  headerLength,
  nonceInto,
  parseHeader,
  type BlobHeader,
  type ObjectRef,
} from './format.js';
import type { SealSession, Sealer } from './sealer.js';

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
  /** open whole chunks in this sealer's worker threads (a server: its event loop then only moves bytes) */
  sealer?: Sealer;
  /**
   * A whole read (no `range`, or one of everything) checked against the digest recorded at
   * upload: the plaintext's SHA-256 is computed on the way (in the sealer's worker, if any) and
   * the last piece of plaintext is held back until the end; `check` gets the digest (hex) and the
   * size, and an error it returns ends the stream instead of that piece, so a complete body that
   * failed its check is never released.
   */
  verify?: (got: { sha256: string; size: number }) => Error | undefined;
}

const TAIL = 2 * TAG_BYTES;
/** chunks handed to the worker at once by a stream alone on its worker (fewer when it shares it: SealSession.depth) */
const IN_FLIGHT = 3;
const endError = (i: number) =>
  blobErrors.integrity(`encrypted blob does not end after chunk ${i}: truncated, extended or reordered`);

/** A chunk being opened in the worker: its plaintext once verified, or the error to end with. */
interface Opening {
  done: Promise<void>;
  plain?: Buffer;
  error?: Error;
}

/**
 * Encrypted blob in, plaintext out. A chunk's plaintext is released only after its tag verified:
 * its ciphertext is held (references, at most one chunk) until the tag arrives, then decrypted and
 * its plaintext pushed only once the tag verified: on the calling thread, or with a `sealer` in
 * its worker threads (ciphertext ‖ tag transferred there, up to IN_FLIGHT chunks per stream and fewer when streams share a worker, the
 * plaintext transferred back, in order), so that concurrent downloads spread their cipher and
 * hash over the cores instead of sharing the event loop's. Input pieces that are whole chunks (ciphertext ‖ tag, as FsBlobStore reads them when told
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
  // verify
  private hash: Hash | undefined;
  private lastPiece: Buffer | undefined;
  private released = 0;
  // offloaded
  private session: SealSession | undefined;
  private readonly queue: Opening[] = [];

  constructor(private readonly o: DecryptOptions) {
    super({ highWaterMark: (o.range?.header.chunkSize ?? 1 << 20) + TAG_BYTES });
    this.i = o.range?.firstChunk ?? 0;
    this.skip = o.range?.skip ?? 0;
    this.left = o.range?.take ?? Number.POSITIVE_INFINITY;
    this.tail = o.range && !o.range.toEnd ? 0 : TAIL;
    if (o.range) this.header = o.range.header;
    if (o.verify && o.range && (o.range.firstChunk !== 0 || o.range.skip !== 0 || !o.range.toEnd))
      throw blobErrors.usage('a verified read is a whole read');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.add(chunk);
    if (!this.ready) {
      this.begin().then(
        (ready) => {
          try {
            if (ready) this.drain();
          } catch (e) {
            cb(e as Error);
            return;
          }
          this.pump(this.depth(), cb);
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
    this.pump(this.depth(), cb);
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.ready) throw blobErrors.integrity('encrypted blob is truncated (no complete header)');
      if (this.tail !== 0 && this.fed > 0 && this.fed < this.C && this.pendLen === TAIL) {
        // the last data chunk was partial: what is left is its tag, then the end chunk
        this.open(this.takeBytes(TAG_BYTES));
      }
      this.finish();
    } catch (e) {
      cb(e as Error);
      return;
    }
    // every data chunk verified and released before the end is checked (the end chunk is the
    // last of the queue), then the digest
    this.pump(1, (err) => {
      if (err) return cb(err);
      this.digest().then((d) => {
        const bad = d && this.o.verify!({ sha256: d, size: this.released });
        if (bad) {
          this.lastPiece = undefined;
          return cb(bad);
        }
        if (this.lastPiece) this.push(this.lastPiece);
        this.lastPiece = undefined;
        cb();
      }, cb);
    });
  }

  /** chunks this stream keeps in flight in the worker */
  private depth(): number {
    return this.session ? this.session.depth(IN_FLIGHT) : IN_FLIGHT;
  }

  private get ready(): boolean {
    return this.key !== undefined || this.session !== undefined;
  }

  /** Checks the end of the input and opens the end chunk (queued behind the data chunks in worker mode). */
  private finish(): void {
    if (this.tail === 0) {
      // a range that stops after a full chunk
      if (this.fed !== 0 || this.pendLen !== 0) throw blobErrors.integrity('encrypted blob is truncated');
      return;
    }
    if (!(this.fed === 0 && this.pendLen === TAG_BYTES)) {
      throw this.fed === 0 && this.pendLen < TAG_BYTES
        ? blobErrors.integrity('encrypted blob is truncated')
        : chunkError(this.i);
    }
    const tag = this.takeBytes(TAG_BYTES);
    const i = this.i;
    if (this.session) {
      const ab = new ArrayBuffer(TAG_BYTES);
      tag.copy(Buffer.from(ab));
      this.enqueue(ab, 0, nonceInto(this.nonce, this.header!.noncePrefix, this.i, true), () => endError(i));
      return;
    }
    const end = this.newDecipher(true);
    end.setAuthTag(tag);
    end.update(Buffer.alloc(0));
    try {
      end.final();
    } catch {
      throw endError(this.i);
    }
  }

  /** The SHA-256 (hex) of the plaintext, when verifying; ends the worker's stream. */
  private async digest(): Promise<string | undefined> {
    if (this.session) {
      const r = await this.session.end();
      this.session = undefined;
      return this.o.verify ? r.sha256 : undefined;
    }
    return this.hash?.digest('hex');
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.held = [];
    this.pending = [];
    this.queue.length = 0;
    this.lastPiece = undefined;
    this.session?.drop();
    this.session = undefined;
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
    if (this.o.keyId !== undefined && this.o.keyId !== this.header.keyId)
      throw blobErrors.integrity('blob names another data key than its record');
    const raw = await this.o.getKey(this.header.keyId);
    if (this.o.sealer) {
      this.session = this.o.sealer.begin(raw, this.header.bytes, this.o.verify !== undefined);
    } else {
      this.key = crypto.createSecretKey(raw);
      if (this.o.verify) this.hash = crypto.createHash('sha256');
    }
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
    if (this.session) return this.openOff(held, tag);
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
      if (this.o.consumeInput && one && one.buffer === tag.buffer && one.byteOffset + one.length === tag.byteOffset)
        release(Buffer.from(one.buffer, one.byteOffset, one.length + TAG_BYTES));
    }
    this.i++;
    this.fed = 0;
    for (const p of out) this.deliver(p);
  }

  /** Releases the window of a verified chunk's plaintext (holding the last piece back when verifying). */
  private deliver(p: Buffer): void {
    const from = Math.min(this.skip, p.length);
    this.skip -= from;
    const to = Math.min(p.length, from + this.left);
    this.left -= to - from;
    if (to <= from) return;
    const piece = from === 0 && to === p.length ? p : p.subarray(from, to);
    if (!this.o.verify) {
      this.push(piece);
      return;
    }
    this.hash?.update(piece);
    this.released += piece.length;
    const prev = this.lastPiece;
    this.lastPiece = piece;
    if (prev) this.push(prev);
  }

  /**
   * Worker mode: hands the held chunk and its tag to the worker as one buffer (the input's own
   * when the chunk was read whole into a buffer of its own, else a copy).
   */
  private openOff(held: Buffer[], tag: Buffer): void {
    const n = held.reduce((a, b) => a + b.length, 0);
    const one = held.length === 1 ? held[0]! : undefined;
    let ab: ArrayBuffer;
    if (
      this.o.consumeInput &&
      one &&
      one.buffer === tag.buffer &&
      one.byteOffset === 0 &&
      one.length + TAG_BYTES === one.buffer.byteLength &&
      tag.byteOffset === one.length
    ) {
      ab = one.buffer as ArrayBuffer;
    } else {
      ab = new ArrayBuffer(n + TAG_BYTES);
      const b = Buffer.from(ab);
      let o = 0;
      for (const h of held) o += h.copy(b, o);
      tag.copy(b, o);
    }
    const i = this.i;
    this.enqueue(ab, n, nonceInto(this.nonce, this.header!.noncePrefix, i, false), () => chunkError(i));
    this.i++;
    this.fed = 0;
  }

  private enqueue(ab: ArrayBuffer, n: number, nonce: Buffer, onAuth: () => Error): void {
    const entry: Opening = {
      done: this.session!.unseal(ab, n, nonce).then(
        (plain) => void (entry.plain = plain),
        (e: unknown) => void (entry.error = (e as { auth?: boolean }).auth ? onAuth() : (e as Error)),
      ),
    };
    this.queue.push(entry);
  }

  /** Releases opened chunks in order, calling back once fewer than `limit` are still being opened (inline: at once). */
  private pump(limit: number, cb: (e?: Error | null) => void): void {
    for (;;) {
      const head = this.queue[0];
      if (!head) return cb();
      if (head.error) {
        this.queue.length = 0;
        return cb(head.error);
      }
      if (!head.plain) {
        if (this.queue.length < limit) return cb();
        void head.done.then(() => this.pump(limit, cb));
        return;
      }
      this.queue.shift();
      if (head.plain.length) this.deliver(head.plain);
    }
  }

  private newDecipher(last: boolean): DecipherGCM {
    const h = this.header!;
    const d = crypto.createDecipheriv('aes-256-gcm', this.key!, nonceInto(this.nonce, h.noncePrefix, this.i, last), {
      authTagLength: TAG_BYTES,
    });
    d.setAAD(h.bytes);
    return d;
  }
}
