import crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { vaultErrors } from './errors.js';

/**
 * Streams allocate a buffer per piece (TLS, cipher, file reads) and drop it at once; V8 frees
 * such external memory only at its next collection, which it triggers by itself only after
 * ~64 MiB more. When the process exposes `gc` (`coffre serve` does), a young-generation
 * collection (under a millisecond) every 4 MiB streamed keeps that garbage small.
 */
const GC_EVERY = 4 * 1024 * 1024;
let sinceGc = 0;
function streamed(n: number): void {
  sinceGc += n;
  if (sinceGc < GC_EVERY) return;
  sinceGc = 0;
  (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc?.({ type: 'minor' });
}

/**
 * Upload side: counts and hashes the plaintext on its way to the encrypting writer, and stops it
 * as soon as it passes `limit` (so an oversized body is never stored whole).
 */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash = crypto.createHash('sha256');
  private digestHex: string | undefined;

  constructor(private readonly limit: number, private readonly onLimit: () => Error) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    streamed(chunk.length);
    if (this.bytes > this.limit) {
      cb(this.onLimit());
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    cb();
  }

  /** hex SHA-256 of everything that passed; only after the stream ended */
  get sha256(): string {
    if (this.digestHex === undefined) throw new Error('Meter: digest read before the end of the stream');
    return this.digestHex;
  }
}

/**
 * Download side: passes plaintext through while hashing it, but holds back the last piece until
 * the end. If the SHA-256 of the whole does not match the one recorded at upload, the stream
 * errors instead of sending that last piece: the client never receives a complete body that
 * failed its check (the response is aborted, Content-Length unmet).
 */
export class VerifyingPassThrough extends Transform {
  private readonly hash = crypto.createHash('sha256');
  private held: Buffer | null = null;
  bytes = 0;

  constructor(private readonly expectedHex: string, private readonly expectedSize: number, private readonly onMismatch: (got: { sha256: string; size: number }) => void) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    streamed(chunk.length);
    const prev = this.held;
    this.held = chunk;
    cb(null, prev ?? undefined);
  }

  override _flush(cb: TransformCallback): void {
    const got = this.hash.digest('hex');
    if (got !== this.expectedHex || this.bytes !== this.expectedSize) {
      this.held = null;
      this.onMismatch({ sha256: got, size: this.bytes });
      cb(vaultErrors.integrity());
      return;
    }
    const last = this.held;
    this.held = null;
    cb(null, last ?? undefined);
  }
}

/** A pass-through that counts what it streams (ranged downloads), for the collections above. */
export class Streamed extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    streamed(chunk.length);
    cb(null, chunk);
  }
}
