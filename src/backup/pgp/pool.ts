import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { encryptPart, type WorkerReply, type WorkerRequest } from './seipd.js';

/** ./seipd.ts (tests, type stripping) or ./seipd.js (dist): the worker runs that module */
const WORKER_URL = new URL(`./seipd${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export interface Encrypted {
  /** the plaintext buffer, handed back for reuse */
  plain: ArrayBuffer;
  /** the output buffer; the message is its first `length` bytes */
  out: ArrayBuffer;
  length: number;
  sha256: string;
}

/**
 * Encrypts parts in worker threads with one backup's session key. Buffers are transferred to the
 * worker and back (no copies, no per-part allocation); `close` makes the workers wipe the key and
 * exit. `threads: 0` encrypts on the calling thread.
 */
export class EncryptPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (p: Encrypted) => void; reject: (e: Error) => void }>();
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
      const w = new Worker(WORKER_URL, { workerData: { role: 'coffre-seipd', key: new Uint8Array(key), prefix, date } });
      w.on('message', (r: WorkerReply) => {
        const p = this.waiting.get(r.id);
        if (!p) return;
        this.waiting.delete(r.id);
        if (r.error !== undefined) p.reject(new Error(`encryption failed: ${r.error}`));
        else p.resolve({ plain: r.plain, out: r.out, length: r.length, sha256: r.sha256 });
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`encryption worker exited with ${code}`));
      });
      this.workers.push(w);
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  /** Encrypts `plain[0, length)` into `out`. Both buffers are transferred and come back in the result. */
  encrypt(plain: ArrayBuffer, length: number, out: ArrayBuffer): Promise<Encrypted> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.inline) {
      try {
        const r = encryptPart(this.inline.key, new Uint8Array(plain, 0, length), this.inline.prefix, this.inline.date, new Uint8Array(out));
        return Promise.resolve({ plain, out, length: r.message.length, sha256: r.sha256 });
      } catch (e) {
        return Promise.reject(e as Error);
      }
    }
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise<Encrypted>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, plain, length, out } satisfies WorkerRequest, [plain, out]);
    });
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
