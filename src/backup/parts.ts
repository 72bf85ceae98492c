import crypto from 'node:crypto';
import { release } from '../shared/buffers.js';
import { backupErrors } from './errors.js';
import { partName, type PartRecord } from './format.js';
import { PartError, type PartPool } from './pgp/pool.js';
import { partSize as messageSize } from './pgp/seipd.js';
import type { BackupTarget } from './targets/types.js';

/** A fixed set of equal buffers handed out and back: memory stays flat whatever the backup size. */
class BufferRing {
  private readonly free: ArrayBuffer[] = [];
  private readonly waiters: ((b: ArrayBuffer) => void)[] = [];
  constructor(count: number, size: number) {
    for (let i = 0; i < count; i++) this.free.push(new ArrayBuffer(size));
  }
  take(): Promise<ArrayBuffer> {
    const b = this.free.pop();
    return b ? Promise.resolve(b) : new Promise((r) => this.waiters.push(r));
  }
  give(b: ArrayBuffer): void {
    const w = this.waiters.shift();
    if (w) w(b);
    else this.free.push(b);
  }
}

/**
 * Cuts the archive into fixed-size parts, encrypts them in worker threads and uploads them under
 * `dir`. Memory is bounded by the buffers: (threads + 1) plaintext and `maxInFlight` ciphertext
 * buffers of one part each, whatever the backup size. Parts are independent OpenPGP messages, so
 * `for p in part-*; do gpg -d "$p"; done | tar x` restores them, and a part whose upload failed is
 * retried alone.
 */
export async function uploadParts(o: {
  source: AsyncIterable<Buffer> & { destroy?: (e?: Error) => void };
  target: BackupTarget;
  dir: string;
  partSize: number;
  prefixLength: number;
  pool: PartPool;
  threads: number;
  maxInFlight: number;
  onPlainBytes?: (n: number) => void;
  onPart?: (p: PartRecord) => void;
  signal?: AbortSignal;
}): Promise<{ parts: PartRecord[]; plainSize: number }> {
  const plainRing = new BufferRing(Math.max(1, o.threads) + 1, o.partSize);
  const outRing = new BufferRing(o.maxInFlight, messageSize(o.partSize, o.prefixLength));
  const parts: PartRecord[] = [];
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  let index = 0;
  let plainSize = 0;
  let buf = await plainRing.take();
  let view = new Uint8Array(buf);
  let fill = 0;

  const dispatch = async (last: boolean) => {
    const i = index++;
    const plain = buf;
    const length = fill;
    const job = (async () => {
      const out = await outRing.take();
      const enc = await o.pool.encrypt(plain, length, out);
      plainRing.give(enc.input);
      try {
        const name = partName(i);
        await o.target.put(`${o.dir}/${name}`, Buffer.from(enc.out, 0, enc.length));
        const rec = { name, size: enc.length, sha256: enc.sha256 };
        parts[i] = rec;
        o.onPart?.(rec);
      } finally {
        outRing.give(enc.out);
      }
    })().catch((e: unknown) => {
      failure ??= e;
    });
    inflight.add(job);
    void job.finally(() => inflight.delete(job));
    if (!last) {
      buf = await plainRing.take();
      view = new Uint8Array(buf);
      fill = 0;
    }
  };

  try {
    for await (const chunk of o.source) {
      if (failure) break;
      if (o.signal?.aborted) throw backupErrors.io('backup', 'stopped: the appliance is shutting down');
      let off = 0;
      while (off < chunk.length && !failure) {
        const n = Math.min(chunk.length - off, o.partSize - fill);
        view.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        plainSize += n;
        if (fill === o.partSize) await dispatch(false);
      }
      o.onPlainBytes?.(plainSize);
    }
    if (!failure && (fill > 0 || index === 0)) await dispatch(true);
    while (inflight.size) await Promise.all(inflight);
  } catch (e) {
    failure ??= e;
  }
  if (failure) {
    o.source.destroy?.();
    await Promise.allSettled(inflight);
    throw failure;
  }
  return { parts, plainSize };
}

/**
 * Downloads parts in order, a few ahead; each one's size is checked as it arrives, then a worker
 * checks its SHA-256 against the record and decrypts it (authenticated before any byte is
 * released). Yields the plaintexts in order; a yielded view is valid until the next one is
 * requested. Any mismatch is BACKUP_INTEGRITY. Memory: (ahead + 1) ciphertext and plaintext
 * buffers of one part.
 */
export async function* downloadParts(o: {
  target: BackupTarget;
  dir: string;
  parts: readonly PartRecord[];
  pool: PartPool;
  label: string;
  ahead?: number;
  onCipherBytes?: (n: number) => void;
}): AsyncGenerator<Uint8Array> {
  const ahead = Math.max(1, o.ahead ?? 2);
  const max = Math.max(1, ...o.parts.map((p) => p.size));
  const cipherRing = new BufferRing(ahead, max);
  const plainRing = new BufferRing(ahead + 1, max);
  const fetch = async (p: PartRecord) => {
    const ab = await cipherRing.take();
    let n = 0;
    try {
      const data = new Uint8Array(ab, 0, p.size);
      for await (const c of (await o.target.get(`${o.dir}/${p.name}`)) as AsyncIterable<Buffer>) {
        if (n + c.length > p.size)
          throw backupErrors.integrity(
            `${o.label}: ${p.name} is larger at the target than the ${p.size} bytes recorded`,
          );
        data.set(c, n);
        n += c.length;
        release(c);
      }
      if (n !== p.size)
        throw backupErrors.integrity(`${o.label}: ${p.name} is ${n} bytes at the target, ${p.size} expected`);
    } catch (e) {
      cipherRing.give(ab);
      throw e;
    }
    const out = await plainRing.take();
    try {
      const r = await o.pool.decrypt(ab, p.size, out, p.sha256);
      cipherRing.give(r.input);
      return r;
    } catch (e) {
      if (e instanceof PartError) {
        throw backupErrors.integrity(
          e.kind === 'hash'
            ? `${o.label}: ${p.name} does not match its recorded SHA-256`
            : `${o.label}: ${p.name} does not decrypt (${e.message})`,
        );
      }
      throw e;
    }
  };
  const queue: Promise<Awaited<ReturnType<typeof fetch>>>[] = [];
  let next = 0;
  let done = 0;
  const launch = () => {
    while (queue.length < ahead && next < o.parts.length) {
      const job = fetch(o.parts[next++]!);
      job.catch(() => undefined); // awaited in order below
      queue.push(job);
    }
  };
  launch();
  let held: ArrayBuffer | null = null;
  try {
    while (queue.length) {
      const r = await queue.shift()!;
      if (held) plainRing.give(held);
      held = r.out;
      done += o.parts[next - queue.length - 1]!.size;
      o.onCipherBytes?.(done);
      launch();
      yield new Uint8Array(r.out, r.offset, r.length);
    }
  } finally {
    await Promise.allSettled(queue);
  }
}
