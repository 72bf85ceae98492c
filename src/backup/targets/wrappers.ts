import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '../errors.js';
import type { BackupTarget, TargetEntry } from './types.js';

/**
 * Behaviour around a target, added by wrapping (STYLE.md #2; restic's retry and limiter
 * backends). Each wrapper keeps the BackupTarget contract.
 */
abstract class TargetWrapper implements BackupTarget {
  constructor(protected readonly inner: BackupTarget) {}
  get display(): string {
    return this.inner.display;
  }
  put(p: string, data: Buffer | Readable): Promise<{ size: number }> {
    return this.inner.put(p, data);
  }
  get(p: string): Promise<Readable> {
    return this.inner.get(p);
  }
  list(dir: string): Promise<TargetEntry[]> {
    return this.inner.list(dir);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  remove(p: string): Promise<void> {
    return this.inner.remove(p);
  }
  space(): Promise<{ free: number; total: number } | null> {
    return this.inner.space();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface RetryOptions {
  /** attempts after the first */
  retries: number;
  /** first delay; doubles each attempt, with ±25 % jitter */
  baseMs: number;
  onRetry?: (info: { op: string; attempt: number; delayMs: number; error: Error }) => void;
  signal?: AbortSignal;
}

/**
 * Retries transient failures (TARGET_UNREACHABLE: connection refused or lost, timeouts) with
 * exponential back-off. Authentication, host-key, full-disk and other failures are final. A put
 * from a stream is not retried (the stream is consumed); puts of buffers are.
 */
export class RetryingTarget extends TargetWrapper {
  constructor(inner: BackupTarget, private readonly o: RetryOptions) {
    super(inner);
  }

  private async attempt<T>(op: string, fn: () => Promise<T>, retryable = true): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!retryable || !isRetryable(e) || attempt >= this.o.retries || this.o.signal?.aborted) throw e;
        const delayMs = Math.round(this.o.baseMs * 2 ** attempt * (0.75 + Math.random() / 2));
        this.o.onRetry?.({ op, attempt: attempt + 1, delayMs, error: e as Error });
        await sleep(delayMs, undefined, this.o.signal ? { signal: this.o.signal } : undefined).catch(() => undefined);
      }
    }
  }

  override put(p: string, data: Buffer | Readable) {
    return this.attempt(`put ${p}`, () => this.inner.put(p, data), Buffer.isBuffer(data));
  }
  override get(p: string) {
    return this.attempt(`get ${p}`, () => this.inner.get(p));
  }
  override list(dir: string) {
    return this.attempt(`list ${dir}`, () => this.inner.list(dir));
  }
  override rename(from: string, to: string) {
    return this.attempt(`rename ${from}`, () => this.inner.rename(from, to));
  }
  override remove(p: string) {
    return this.attempt(`remove ${p}`, () => this.inner.remove(p));
  }
  override space() {
    return this.attempt('space', () => this.inner.space());
  }
}

/** Paces a byte stream to `bytesPerSec` (token bucket, 64 KiB slices, at most 1 s of burst). */
export function throttle(src: AsyncIterable<Buffer> | Buffer, bytesPerSec: number): Readable {
  const slice = 64 * 1024;
  async function* paced() {
    let tokens = 0;
    let last = performance.now();
    const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(src) ? [src] : src;
    for await (const c of chunks) {
      for (let off = 0; off < c.length; off += slice) {
        const part = c.subarray(off, Math.min(off + slice, c.length));
        for (;;) {
          const now = performance.now();
          tokens = Math.min(bytesPerSec, tokens + ((now - last) / 1000) * bytesPerSec);
          last = now;
          if (tokens >= part.length) break;
          await sleep(Math.ceil(((part.length - tokens) / bytesPerSec) * 1000));
        }
        tokens -= part.length;
        yield part;
      }
    }
  }
  return Readable.from(paced(), { objectMode: false });
}

/** Limits transfer rate in both directions (backup.bandwidthLimitKiBps). */
export class BandwidthLimitedTarget extends TargetWrapper {
  constructor(inner: BackupTarget, private readonly bytesPerSec: number) {
    super(inner);
  }
  override put(p: string, data: Buffer | Readable) {
    return this.inner.put(p, throttle(data, this.bytesPerSec));
  }
  override async get(p: string) {
    return throttle(await this.inner.get(p), this.bytesPerSec);
  }
}
