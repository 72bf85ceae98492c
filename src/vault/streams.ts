import { Transform, type TransformCallback } from 'node:stream';
import { release } from '../shared/buffers.js';
import { collect } from '../runtime/index.js';

/**
 * Streams allocate a buffer per piece (TLS records, sealed and opened chunks, file reads). V8
 * counts such external memory as it is allocated and, every ~64 MiB not yet given back by a
 * collection, runs a full mark-compact (tens of milliseconds on the server's heap, dozens per GiB).
 * When the process exposes `gc` (`coffre serve` does, src/runtime/memory.ts), a young-generation
 * collection (about a millisecond) every 2 MiB streamed frees those buffers while they are young:
 * a tenth of the full collections, and the garbage of a transfer never piles up (figures:
 * bench/RESULTS.md, "Design measurements"). The buffers that do live longer (waiting for a disk write or a slow
 * client) are detached by their last user (FsBlobStore, DecryptStream, `freeWhenWritten`).
 */
const GC_EVERY = 2 * 1024 * 1024;
let sinceGc = 0;
function streamed(n: number): void {
  sinceGc += n;
  if (sinceGc < GC_EVERY) return;
  sinceGc = 0;
  collect('minor');
}

/**
 * Upload side: counts the plaintext on its way to the encrypting writer (which hashes it, in the
 * sealing worker), and stops it as soon as it passes `limit` (so an oversized body is never
 * stored whole).
 */
export class Meter extends Transform {
  bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly onLimit: () => Error,
    private readonly o: { collect: boolean } = { collect: true },
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.o.collect) streamed(chunk.length);
    if (this.bytes > this.limit) {
      cb(this.onLimit());
      return;
    }
    cb(null, chunk);
  }
}

/**
 * Download side: a pass-through that counts what it streams, for the collections above (the
 * plaintext was checked against its recorded digest by the blob reader: SealedBlobs.read).
 */
export class Streamed extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    streamed(chunk.length);
    cb(null, chunk);
  }
}

/**
 * Frees the plaintext a response has written: the content stream's pieces are the vault's own
 * buffers (one decrypted chunk each), and once the socket has taken one (its write callback) no
 * one holds it. Detaching gives its memory back at once; left to V8, buffers that waited for a
 * slow client survive young collections, and every ~64 MiB of them costs a full collection.
 */
export function freeWhenWritten(res: { write: (...a: never[]) => boolean }): void {
  const write = res.write.bind(res) as (chunk: unknown, enc?: unknown, cb?: unknown) => boolean;
  (res as { write: unknown }).write = (chunk: unknown, enc?: unknown, cb?: unknown) => {
    const done = typeof enc === 'function' ? enc : cb;
    const encoding = typeof enc === 'function' ? undefined : enc;
    return write(chunk, encoding, (err?: Error | null) => {
      if (Buffer.isBuffer(chunk)) release(chunk);
      if (typeof done === 'function') (done as (e?: Error | null) => void)(err);
    });
  };
}
