import crypto, { type CipherGCM, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { NONCE_BYTES, TAG_BYTES, nonceInto, type BlobHeader } from './format.js';

/**
 * Plaintext in, encrypted blob out (format.ts), in constant memory and without copying: every
 * data chunk is sealed as "not last", so each input piece is encrypted and its ciphertext released
 * at once; a chunk's tag follows when the chunk is full (or at the end of input for the last,
 * partial one), then the empty end chunk sealed as "last". Nothing is buffered or encrypted twice,
 * and the input buffers are not kept. The DEK is turned into a KeyObject once per stream (a
 * raw-key createCipheriv per chunk costs five times more); Node clears the KeyObject's copy when
 * it is collected, and the caller's buffer is not kept.
 */
export class EncryptStream extends Transform {
  private readonly key: KeyObject;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private readonly C: number;
  private cipher: CipherGCM | undefined;
  private fed = 0;
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
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      this.plaintextBytes += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        this.cipher ??= this.newCipher(false);
        const n = Math.min(this.C - this.fed, chunk.length - off);
        this.push(this.cipher.update(n === chunk.length ? chunk : chunk.subarray(off, off + n)));
        this.fed += n;
        off += n;
        if (this.fed === this.C) this.sealChunk();
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.started) this.start();
      if (this.cipher) this.sealChunk(); // the last, partial data chunk
      const end = this.newCipher(true);
      end.final();
      this.push(end.getAuthTag());
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.cipher = undefined;
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

  private sealChunk(): void {
    this.cipher!.final();
    this.push(this.cipher!.getAuthTag());
    this.cipher = undefined;
    this.fed = 0;
    this.i++;
  }
}
