import crypto, { type CipherGCM, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { NONCE_BYTES, TAG_BYTES, nonceInto, type BlobHeader } from './format.js';

/**
 * Plaintext in, encrypted blob out (format.ts), in constant memory and without copying.
 *
 * A full chunk is never the last one (format.ts), so each chunk is encrypted as "not last" piece by
 * piece as input arrives; its ciphertext is held (at most one chunk) and released with its tag once
 * the chunk is full. Input is copied into one reused chunk buffer first (a memcpy costs ~5% of the
 * AES-GCM time) and encrypted from there, so a producer that reuses its buffers cannot make the two
 * passes disagree. At the end of input the pending partial chunk (0..C-1 bytes) is encrypted again
 * from that buffer as the last chunk: at most one chunk per blob is encrypted twice. The DEK is turned into a KeyObject once per stream (a raw-key
 * createCipheriv per chunk costs five times more) and the caller's buffer is not kept; the
 * KeyObject's copy is cleared by Node when it is collected.
 */
export class EncryptStream extends Transform {
  private readonly key: KeyObject;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private readonly C: number;
  private readonly buf: Buffer;
  private cipher: CipherGCM | undefined;
  private fed = 0;
  private heldOut: Buffer[] = [];
  private i = 0;
  private started = false;
  /** plaintext bytes consumed */
  plaintextBytes = 0;

  constructor(
    key: Buffer,
    private readonly header: BlobHeader,
  ) {
    super({ highWaterMark: header.chunkSize + TAG_BYTES });
    this.key = crypto.createSecretKey(key);
    this.C = header.chunkSize;
    this.buf = Buffer.allocUnsafe(this.C);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      this.plaintextBytes += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        this.cipher ??= this.newCipher(false);
        const n = Math.min(this.C - this.fed, chunk.length - off);
        chunk.copy(this.buf, this.fed, off, off + n);
        this.heldOut.push(this.cipher.update(this.buf.subarray(this.fed, this.fed + n)));
        this.fed += n;
        off += n;
        if (this.fed === this.C) {
          this.cipher.final();
          for (const b of this.heldOut) this.push(b);
          this.push(this.cipher.getAuthTag());
          this.next();
        }
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      // the last chunk: re-encrypt the pending partial chunk with the "last" flag
      const c = this.newCipher(true);
      if (this.fed) this.push(c.update(this.buf.subarray(0, this.fed)));
      c.final();
      this.push(c.getAuthTag());
      this.next();
      this.buf.fill(0);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.heldOut = [];
    this.cipher = undefined;
    this.buf.fill(0);
    cb(err);
  }

  private start(): void {
    this.started = true;
    this.push(this.header.bytes);
  }

  private newCipher(last: boolean): CipherGCM {
    const c = crypto.createCipheriv('aes-256-gcm', this.key, nonceInto(this.nonce, this.header.noncePrefix, this.i, last), { authTagLength: TAG_BYTES });
    c.setAAD(this.header.bytes);
    return c;
  }

  private next(): void {
    this.i++;
    this.fed = 0;
    this.cipher = undefined;
    this.heldOut = [];
  }
}
