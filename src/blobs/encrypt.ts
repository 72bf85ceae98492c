import crypto, { type CipherGCM, type Hash, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { NONCE_BYTES, TAG_BYTES, nonceInto, type BlobHeader } from './format.js';
import type { Sealed, SealSession, Sealer } from './sealer.js';
import { release } from '../shared/buffers.js';

export interface EncryptOptions {
  /** seal whole chunks in this worker (a server: its event loop then only moves bytes) */
  sealer?: Sealer;
  /** also compute the SHA-256 of the plaintext (read `sha256` once the stream finished) */
  sha256?: boolean;
  /**
   * The input pieces are this stream's alone (an upload's request body): each one is freed
   * (detached) once encrypted or copied, instead of at V8's next collection.
   */
  consumeInput?: boolean;
}

/** chunks handed to the sealing worker at once */
const IN_FLIGHT = 2;

/**
 * Plaintext in, encrypted blob out (format.ts), in constant memory. Both modes give the same bytes:
 *
 * - inline (no sealer): every data chunk is sealed as "not last", so each input piece is encrypted
 *   on the calling thread and its ciphertext released at once, without gathering or copying; a
 *   chunk's tag follows when the chunk is full (or at the end of input for the last, partial one),
 *   then the empty end chunk sealed as "last". The fastest per byte (bench: keys).
 * - offloaded (`sealer`): input pieces (16 KiB TLS records from an upload) are gathered into
 *   whole-chunk buffers (one copy), which are transferred to the sealing worker (and back for
 *   reuse) and sealed there, up to IN_FLIGHT at a time, with the plaintext hash; sealed chunks are
 *   released in order. Memory: IN_FLIGHT + 1 chunk buffers and the sealed chunks not yet written.
 *
 * The DEK becomes a KeyObject (or the worker's copy) once per stream; the caller's buffer is not
 * kept. Every piece pushed is a buffer the consumer may free once written.
 */
export class EncryptStream extends Transform {
  private readonly C: number;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private i = 0;
  private fed = 0;
  private started = false;
  private digest: string | undefined;
  // inline
  private readonly key: KeyObject | undefined;
  private readonly hash: Hash | undefined;
  private cipher: CipherGCM | undefined;
  // offloaded
  private readonly session: SealSession | undefined;
  private buf: Buffer | undefined;
  private readonly spare: ArrayBuffer[] = [];
  private readonly queue: { done: Promise<Sealed>; sealed?: Sealed }[] = [];
  private failed: unknown;
  private readonly consume: boolean;
  /** plaintext bytes consumed */
  plaintextBytes = 0;

  constructor(
    key: Buffer,
    private readonly header: BlobHeader,
    o: EncryptOptions = {},
  ) {
    super(
      o.sealer
        ? { writableHighWaterMark: 64 * 1024, readableHighWaterMark: header.chunkSize + TAG_BYTES }
        : { highWaterMark: header.chunkSize + TAG_BYTES },
    );
    this.C = header.chunkSize;
    this.consume = o.consumeInput === true;
    if (o.sealer) {
      this.session = o.sealer.begin(key, header.bytes, o.sha256 === true);
    } else {
      this.key = crypto.createSecretKey(key);
      if (o.sha256) this.hash = crypto.createHash('sha256');
    }
  }

  /** SHA-256 (hex) of the plaintext, when asked for; once the stream finished */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('EncryptStream: no digest (not asked for, or read before the end)');
    return this.digest;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      this.plaintextBytes += chunk.length;
      if (this.session) {
        this.gather(chunk);
        if (this.consume) release(chunk);
        return this.flushSealed(IN_FLIGHT, cb);
      }
      this.hash?.update(chunk);
      let off = 0;
      while (off < chunk.length) {
        this.cipher ??= this.newCipher(false);
        const n = Math.min(this.C - this.fed, chunk.length - off);
        this.push(this.cipher.update(n === chunk.length ? chunk : chunk.subarray(off, off + n)));
        this.fed += n;
        off += n;
        if (this.fed === this.C) this.sealInline();
      }
      if (this.consume) release(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      if (this.session) {
        if (this.fed > 0) this.send(this.fed, false); // the last, partial data chunk
        this.buf = undefined;
        this.send(0, true); // the end chunk: a tag only
        this.flushSealed(1, (err) => {
          if (err) return cb(err);
          this.session!.end().then((r) => {
            this.digest = r.sha256;
            cb();
          }, cb);
        });
        return;
      }
      if (this.cipher) this.sealInline(); // the last, partial data chunk
      const end = this.newCipher(true);
      end.final();
      this.push(end.getAuthTag());
      this.digest = this.hash?.digest('hex');
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.cipher = undefined;
    this.session?.drop();
    this.queue.length = 0;
    this.spare.length = 0;
    this.buf = undefined;
    cb(err);
  }

  private start(): void {
    this.started = true;
    this.push(Buffer.from(this.header.bytes)); // a copy: the header stays the AAD of every chunk
  }

  private newCipher(last: boolean): CipherGCM {
    const c = crypto.createCipheriv(
      'aes-256-gcm',
      this.key!,
      nonceInto(this.nonce, this.header.noncePrefix, this.i, last),
      { authTagLength: TAG_BYTES },
    );
    c.setAAD(this.header.bytes);
    return c;
  }

  private sealInline(): void {
    this.cipher!.final();
    this.push(this.cipher!.getAuthTag());
    this.cipher = undefined;
    this.fed = 0;
    this.i++;
  }

  /** Copies input into whole-chunk buffers; each full one goes to the worker. */
  private gather(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const buf = (this.buf ??= Buffer.from(this.spare.pop() ?? new ArrayBuffer(this.C)));
      const n = chunk.copy(buf, this.fed, off, Math.min(chunk.length, off + this.C - this.fed));
      this.fed += n;
      off += n;
      if (this.fed === this.C) {
        this.send(this.C, false);
        this.buf = undefined;
        this.fed = 0;
      }
    }
  }

  /** Hands bytes [0, n) of the current chunk buffer to the worker as chunk i (the end chunk when `last`). */
  private send(n: number, last: boolean): void {
    const ab = last ? new ArrayBuffer(0) : (this.buf!.buffer as ArrayBuffer);
    const entry: { done: Promise<Sealed>; sealed?: Sealed } = {
      done: this.session!.seal(ab, n, nonceInto(this.nonce, this.header.noncePrefix, this.i, last)),
    };
    if (!last) this.i++;
    entry.done.then(
      (s) => {
        entry.sealed = s;
        if (s.input.byteLength === this.C && this.spare.length <= IN_FLIGHT) this.spare.push(s.input);
      },
      (e: unknown) => {
        this.failed ??= e;
      },
    );
    this.queue.push(entry);
  }

  /** Pushes sealed chunks in order, waiting until fewer than `limit` are still being sealed. */
  private flushSealed(limit: number, cb: (e?: Error | null) => void): void {
    for (;;) {
      if (this.failed !== undefined) return cb(this.failed as Error);
      const head = this.queue[0];
      if (!head) return cb();
      if (!head.sealed) {
        if (this.queue.length < limit) return cb();
        head.done.then(() => this.flushSealed(limit, cb), cb);
        return;
      }
      this.queue.shift();
      if (head.sealed.out.length) this.push(head.sealed.out);
      this.push(head.sealed.tag);
    }
  }
}
