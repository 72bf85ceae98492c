import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '../errors.js';
import type { BackupTarget, TargetEntry } from './types.js';

/**
 * Behaviour around a target, added by wrapping (restic's retry and limiter
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
  constructor(
    inner: BackupTarget,
    private readonly o: RetryOptions,
  ) {
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

/** A token bucket (at most 1 s of burst), shared by every transfer it paces. */
export class TokenBucket {
  private tokens = 0;
  private last = performance.now();
  constructor(readonly bytesPerSec: number) {}
  async take(n: number): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.bytesPerSec, this.tokens + ((now - this.last) / 1000) * this.bytesPerSec);
      this.last = now;
      if (this.tokens >= n) {
        this.tokens -= n;
        return;
      }
      await sleep(Math.ceil(((n - this.tokens) / this.bytesPerSec) * 1000));
    }
  }
}

/** Paces a byte stream through `bucket`, in 64 KiB slices. */
export function throttle(src: AsyncIterable<Buffer> | Buffer, bucket: TokenBucket): Readable {
  const slice = 64 * 1024;
  async function* paced() {
    const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(src) ? [src] : src;
    for await (const c of chunks) {
      for (let off = 0; off < c.length; off += slice) {
        const part = c.subarray(off, Math.min(off + slice, c.length));
        await bucket.take(part.length);
        yield part;
      }
    }
  }
  return Readable.from(paced(), { objectMode: false });
}

/** Limits the transfer rate of all uploads together, and of all downloads together (backup.bandwidthLimitKiBps). */
export class BandwidthLimitedTarget extends TargetWrapper {
  private readonly up: TokenBucket;
  private readonly down: TokenBucket;
  constructor(inner: BackupTarget, bytesPerSec: number) {
    super(inner);
    this.up = new TokenBucket(bytesPerSec);
    this.down = new TokenBucket(bytesPerSec);
  }
  override put(p: string, data: Buffer | Readable) {
    return this.inner.put(p, throttle(data, this.up));
  }
  override async get(p: string) {
    return throttle(await this.inner.get(p), this.down);
  }
}
