import crypto, { webcrypto } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { NONCE_BYTES, TAG_BYTES, nonceInto, type BlobHeader } from './format.js';

/** chunks being sealed at once (libuv's thread pool, 4 threads by default) */
const IN_FLIGHT = 2;

/** One chunk being sealed; `out` once done. */
interface Sealing {
  done: Promise<void>;
  out?: Buffer;
  err?: unknown;
}

/**
 * Plaintext in, encrypted blob out (format.ts), in constant memory: the input pieces (16 KiB from
 * a TLS socket) are gathered into one chunk buffer (one copy); each full chunk is sealed whole by
 * WebCrypto's AES-256-GCM, which runs in the thread pool, off the event loop, up to IN_FLIGHT
 * chunks at a time; its output (ciphertext ‖ tag) is exactly the chunk's bytes in the blob and is
 * released in order. At the end, the last (partial) data chunk, then the empty end chunk sealed as
 * "last". Memory: IN_FLIGHT + 1 chunk buffers (reused) and the sealed chunks not yet written.
 * The DEK is copied into a non-extractable CryptoKey once per stream; the caller's buffer is not
 * kept. Every piece pushed is a buffer of its own, which the consumer may free once written.
 */
export class EncryptStream extends Transform {
  private readonly key: webcrypto.CryptoKey;
  private readonly C: number;
  private buf: Buffer | undefined;
  private fed = 0;
  private i = 0;
  private started = false;
  private readonly queue: Sealing[] = [];
  /** chunk buffers whose sealing finished, ready for reuse */
  private readonly spare: Buffer[] = [];
  /** plaintext bytes consumed */
  plaintextBytes = 0;

  constructor(
    key: Buffer,
    private readonly header: BlobHeader,
  ) {
    // input waits in small pieces (a 16 KiB TLS record each): a short queue, so they are gone
    // before a young collection would promote them; output: one sealed chunk
    super({ writableHighWaterMark: 64 * 1024, readableHighWaterMark: header.chunkSize + TAG_BYTES });
    this.key = crypto.createSecretKey(key).toCryptoKey({ name: 'AES-GCM' }, false, ['encrypt']);
    this.C = header.chunkSize;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      this.plaintextBytes += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const buf = (this.buf ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(this.C));
        const n = chunk.copy(buf, this.fed, off, Math.min(chunk.length, off + this.C - this.fed));
        this.fed += n;
        off += n;
        if (this.fed === this.C) {
          this.seal(buf, this.C, false);
          this.buf = undefined;
          this.fed = 0;
        }
      }
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.release(IN_FLIGHT, cb);
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      if (this.fed > 0) this.seal(this.buf!, this.fed, false); // the last, partial data chunk
      this.buf = undefined;
      this.seal(Buffer.alloc(0), 0, true); // the end chunk: a tag only
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.release(1, cb);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.queue.length = 0;
    this.spare.length = 0;
    this.buf = undefined;
    cb(err);
  }

  private start(): void {
    this.started = true;
    this.push(Buffer.from(this.header.bytes)); // a copy: the header stays the AAD of every chunk
  }

  /** Starts sealing bytes [0, n) of `buf` as chunk i (the end chunk when `last`). */
  private seal(buf: Buffer, n: number, last: boolean): void {
    const iv = nonceInto(Buffer.alloc(NONCE_BYTES), this.header.noncePrefix, this.i, last);
    if (!last) this.i++;
    const s: Sealing = {
      done: webcrypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: this.header.bytes, tagLength: TAG_BYTES * 8 }, this.key, buf.subarray(0, n)).then(
        (ab) => {
          s.out = Buffer.from(ab);
          if (n === this.C && this.spare.length <= IN_FLIGHT) this.spare.push(buf);
        },
        (e: unknown) => {
          s.err = e;
        },
      ),
    };
    this.queue.push(s);
  }

  /** Pushes sealed chunks in order, waiting until fewer than `limit` are still being sealed. */
  private release(limit: number, cb: TransformCallback): void {
    for (;;) {
      const head = this.queue[0];
      if (!head) return cb();
      if (head.out === undefined && head.err === undefined) {
        if (this.queue.length < limit) return cb();
        head.done.then(() => this.release(limit, cb), cb);
        return;
      }
      this.queue.shift();
      if (head.err !== undefined) return cb(head.err as Error);
      this.push(head.out);
    }
  }
}
