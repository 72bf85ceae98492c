import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { runRequest, type WorkerReply, type WorkerRequest } from './seipd.js';
import { memoryTuning, workerEntry } from '../../runtime/index.js';

/** ./seipd.ts (tests, type stripping), ./seipd.js (dist/src) or the bundle's seipd.mjs: the worker runs that module */
const WORKER_URL = workerEntry(import.meta.url, './seipd', 'seipd');

export interface Processed {
  /** the input buffer, handed back for reuse */
  input: ArrayBuffer;
  /** the output buffer; the result is `out[offset, offset + length)` */
  out: ArrayBuffer;
  offset: number;
  length: number;
  /** SHA-256 of the message (written, or checked) */
  sha256: string;
}

/** A part that failed in a worker: its SHA-256 differs from the record, or it is not a valid part. */
export class PartError extends Error {
  constructor(
    message: string,
    readonly kind: 'hash' | 'format' | 'other',
  ) {
    super(message);
  }
}

/**
 * Encrypts and decrypts parts in worker threads with one backup's session key. Buffers are
 * transferred to the worker and back (no copies, no per-part allocation); `close` makes the
 * workers wipe the key and exit. `threads: 0` works on the calling thread.
 */
export class PartPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (p: Processed) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private rr = 0;
  private readonly inline: { key: Buffer; prefix: Uint8Array; date: number } | null = null;
  private failed: Error | null = null;

  constructor(key: Buffer, prefix: Uint8Array, date: number, threads = Math.min(2, os.availableParallelism())) {
    if (threads <= 0) {
      this.inline = { key: Buffer.from(key), prefix, date };
      return;
    }
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_URL, {
        workerData: { role: 'coffre-seipd', key: new Uint8Array(key), prefix, date, collect: memoryTuning() },
      });
      w.on('message', (r: WorkerReply) => this.settle(r));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`part worker exited with ${code}`));
      });
      this.workers.push(w);
    }
  }

  private settle(r: WorkerReply): void {
    const p = this.waiting.get(r.id);
    if (!p) return;
    this.waiting.delete(r.id);
    if (r.error !== undefined)
      p.reject(Object.assign(new PartError(r.error, r.kind), { buffers: { input: r.input, out: r.out } }));
    else p.resolve({ input: r.input, out: r.out, offset: r.offset, length: r.length, sha256: r.sha256 });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  private run(req: Omit<WorkerRequest, 'id'>): Promise<Processed> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<Processed>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      const full = { ...req, id } as WorkerRequest;
      if (this.inline) this.settle(runRequest(this.inline.key, this.inline.prefix, this.inline.date, full));
      else this.workers[this.rr++ % this.workers.length]!.postMessage(full, [full.input, full.out]);
    });
  }

  /** Encrypts `plain[0, length)` into `out`. Both buffers are transferred and come back in the result. */
  encrypt(plain: ArrayBuffer, length: number, out: ArrayBuffer): Promise<Processed> {
    return this.run({ op: 'encrypt', input: plain, length, out });
  }

  /** Checks the SHA-256 of `message[0, length)` then decrypts it into `out` (authenticated first). */
  decrypt(message: ArrayBuffer, length: number, out: ArrayBuffer, sha256: string): Promise<Processed> {
    return this.run({ op: 'decrypt', input: message, length, out, sha256 });
  }

  /** Wipes the key in every worker and stops them. */
  async close(): Promise<void> {
    this.inline?.key.fill(0);
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.postMessage('wipe');
            setTimeout(() => void w.terminate(), 2000).unref();
          }),
      ),
    );
    this.workers.length = 0;
  }
}
