import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../runtime/index.js';
import type { SealReply, SealRequest } from './seal-worker.js';

const WORKER_URL = workerEntry(import.meta.url, './seal-worker', 'seal-worker');

/** A sealed chunk: ciphertext (a buffer of its own) and tag; `input` is the plaintext buffer, handed back for reuse. */
export interface Sealed {
  out: Buffer;
  tag: Buffer;
  input: ArrayBuffer;
}

interface Waiting {
  resolve(r: SealReply): void;
  reject(e: Error): void;
}

/**
 * Chunks one worker thread is given at once, summed over the streams on its lane: a stream alone
 * keeps up to its own pipeline depth in flight, streams sharing a lane split this (at least one
 * each). The worker opens one chunk at a time, so more queued there only holds memory (a
 * ciphertext and a plaintext chunk each).
 */
const LANE_CHUNKS = 4;

/** One worker thread and what it owes: a stream stays on the lane it started on. */
interface Lane {
  worker: Worker | undefined;
  waiting: Map<number, Waiting>;
  /** streams open on it: the worker keeps the process alive only while there are some */
  open: number;
}

/**
 * Seals and opens blob chunks (AES-256-GCM) and hashes their plaintext (SHA-256) in worker
 * threads, so a server's event loop only moves bytes: an upload's or a download's TLS, HTTP and
 * disk I/O stay on the main thread and its cipher and hash run on another core. `threads` workers (default: one per core
 * but one, at least one, at most four); each stream is pinned to one of them (its running hash
 * lives there), streams are spread round-robin. Chunk buffers are transferred both ways (no
 * copies). Workers start on first use and do not keep the process alive while idle; a worker that
 * dies fails the streams it was sealing (each one fails, none is half-accepted) and the next
 * stream on its lane starts a new one. Data keys cross to a worker as a copy, which the worker
 * wipes once it made its key object; `close` stops them.
 */
export class Sealer {
  private readonly lanes: Lane[];
  private nextRid = 0;
  private nextSid = 0;
  private rr = 0;

  constructor(threads = Math.min(4, Math.max(1, os.availableParallelism() - 1))) {
    this.lanes = Array.from({ length: Math.max(1, threads) }, () => ({
      worker: undefined,
      waiting: new Map(),
      open: 0,
    }));
  }

  private start(lane: Lane): Worker {
    if (lane.worker) return lane.worker;
    const w = new Worker(WORKER_URL, { name: 'coffre-sealer' });
    w.on('message', (r: SealReply) => {
      const p = lane.waiting.get(r.rid);
      if (!p) return;
      lane.waiting.delete(r.rid);
      if ('error' in r) p.reject(Object.assign(new Error(`sealing failed: ${r.error}`), r.auth ? { auth: true } : {}));
      else p.resolve(r);
    });
    const fail = (e: Error) => {
      if (lane.worker !== w) return;
      lane.worker = undefined;
      for (const p of lane.waiting.values()) p.reject(e);
      lane.waiting.clear();
    };
    w.on('error', (e) => fail(e));
    w.on('exit', (code) => fail(new Error(`the sealing worker exited (${code})`)));
    lane.worker = w;
    return w;
  }

  private request(
    lane: Lane,
    w: Worker,
    m: SealRequest & { rid: number },
    transfer: ArrayBuffer[] = [],
  ): Promise<SealReply> {
    return new Promise((resolve, reject) => {
      // a stream whose worker died fails at once (its key and hash state died with it)
      if (lane.worker !== w) return reject(new Error('the sealing worker exited'));
      lane.waiting.set(m.rid, { resolve, reject });
      w.postMessage(m, transfer);
    });
  }

  /** Starts a stream (sealing or opening) under `key` (copied, not kept) with `aad`; `sha256` also hashes its plaintext. */
  begin(key: Buffer, aad: Buffer, sha256: boolean): SealSession {
    const lane = this.lanes[this.rr++ % this.lanes.length]!;
    const w = this.start(lane);
    if (lane.open++ === 0) w.ref();
    const sid = this.nextSid++;
    const copy = new Uint8Array(key);
    w.postMessage({ op: 'open', sid, key: copy, aad: new Uint8Array(aad), sha256 } satisfies SealRequest, [
      copy.buffer,
    ]);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      // the lane's current worker: after a crash this stream's worker is gone and a new one serves the lane
      if (--lane.open === 0) lane.worker?.unref();
    };
    return {
      seal: async (input, length, nonce) => {
        const r = await this.request(
          lane,
          w,
          { op: 'seal', sid, rid: this.nextRid++, input, length, nonce: new Uint8Array(nonce) },
          [input],
        );
        const s = r as Extract<SealReply, { out: ArrayBuffer }>;
        return {
          out: Buffer.from(s.out),
          tag: Buffer.from(s.tag.buffer, s.tag.byteOffset, s.tag.length),
          input: s.input,
        };
      },
      unseal: async (input, length, nonce) => {
        const r = await this.request(
          lane,
          w,
          { op: 'unseal', sid, rid: this.nextRid++, input, length, nonce: new Uint8Array(nonce) },
          [input],
        );
        return Buffer.from((r as Extract<SealReply, { plain: ArrayBuffer }>).plain);
      },
      end: async () => {
        try {
          return (await this.request(lane, w, { op: 'end', sid, rid: this.nextRid++ })) as {
            sha256: string | undefined;
          };
        } finally {
          done();
        }
      },
      depth: (max) => Math.max(1, Math.min(max, Math.floor(LANE_CHUNKS / Math.max(1, lane.open)))),
      drop: () => {
        if (closed) return;
        if (lane.worker === w) w.postMessage({ op: 'drop', sid } satisfies SealRequest);
        done();
      },
    };
  }

  /** worker threads running now (they start on a stream's first use) */
  running(): number {
    return this.lanes.filter((l) => l.worker !== undefined).length;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.lanes.map(async (lane) => {
        const w = lane.worker;
        lane.worker = undefined;
        for (const p of lane.waiting.values()) p.reject(new Error('the sealer is closed'));
        lane.waiting.clear();
        if (w) await w.terminate();
      }),
    );
  }
}

export interface SealSession {
  /** Seals `input[0, length)` under `nonce`; `input` is transferred (unusable here until handed back). */
  seal(input: ArrayBuffer, length: number, nonce: Buffer): Promise<Sealed>;
  /**
   * Opens a chunk: `input` holds its ciphertext [0, length) then its tag (transferred, not handed
   * back). Resolves with the plaintext once the tag verified (and hashes it, when asked for);
   * rejects with an error whose `auth` is true when it did not.
   */
  unseal(input: ArrayBuffer, length: number, nonce: Buffer): Promise<Buffer>;
  /** Ends the stream: the SHA-256 (hex) of its plaintext (sealed or opened) when asked for. */
  end(): Promise<{ sha256: string | undefined }>;
  /**
   * How many chunks this stream may keep in flight now, at most `max`: its share of the lane's
   * LANE_CHUNKS while other streams run on the same worker, and at least one.
   */
  depth(max: number): number;
  /** Forgets the stream (an error or a destroy): its key is dropped in the worker. */
  drop(): void;
}
