import crypto from 'node:crypto';
import { backupErrors } from './errors.js';
import { partName, type PartRecord } from './format.js';
import type { EncryptPool } from './pgp/pool.js';
import { decryptPart, partSize as messageSize, PartFormatError } from './pgp/seipd.js';
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
  pool: EncryptPool;
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
      plainRing.give(enc.plain);
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
 * Downloads parts in order (one ahead), checks each against its record (size and SHA-256 of the
 * ciphertext), decrypts it (authenticated before any byte is released) and yields the plaintext.
 * A yielded view is valid until the next one is requested. Any mismatch is BACKUP_INTEGRITY.
 */
export async function* downloadParts(o: {
  target: BackupTarget;
  dir: string;
  parts: readonly PartRecord[];
  sessionKey: Uint8Array;
  label: string;
  onCipherBytes?: (n: number) => void;
}): AsyncGenerator<Uint8Array> {
  const max = Math.max(0, ...o.parts.map((p) => p.size));
  const cipherRing = new BufferRing(2, max);
  const plain = new Uint8Array(max);
  const fetch = async (p: PartRecord): Promise<{ ab: ArrayBuffer; data: Uint8Array }> => {
    const ab = await cipherRing.take();
    try {
      const data = new Uint8Array(ab, 0, p.size);
      const hash = crypto.createHash('sha256');
      let n = 0;
      for await (const c of (await o.target.get(`${o.dir}/${p.name}`)) as AsyncIterable<Buffer>) {
        if (n + c.length > p.size) throw backupErrors.integrity(`${o.label}: ${p.name} is larger at the target than the ${p.size} bytes recorded`);
        data.set(c, n);
        hash.update(c);
        n += c.length;
      }
      if (n !== p.size) throw backupErrors.integrity(`${o.label}: ${p.name} is ${n} bytes at the target, ${p.size} expected`);
      if (hash.digest('hex') !== p.sha256) throw backupErrors.integrity(`${o.label}: ${p.name} does not match its recorded SHA-256`);
      return { ab, data };
    } catch (e) {
      cipherRing.give(ab);
      throw e;
    }
  };
  let done = 0;
  let next = o.parts[0] ? fetch(o.parts[0]) : null;
  for (let i = 0; i < o.parts.length; i++) {
    const { ab, data } = await next!;
    next = o.parts[i + 1] ? fetch(o.parts[i + 1]!) : null;
    next?.catch(() => undefined);
    let out: Uint8Array;
    try {
      out = decryptPart(o.sessionKey, data, plain);
    } catch (e) {
      if (e instanceof PartFormatError) throw backupErrors.integrity(`${o.label}: ${o.parts[i]!.name} does not decrypt (${e.message})`);
      throw e;
    } finally {
      cipherRing.give(ab);
    }
    done += data.length;
    o.onCipherBytes?.(done);
    yield out;
  }
}
