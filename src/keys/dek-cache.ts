import type { Clock } from '../shared/clock.js';

/**
 * Bounded in-memory cache of unwrapped data keys (invariant 2): at most `max` entries, each for at
 * most `ttlMs`; least recently used first out. Every key that leaves the cache (eviction, expiry,
 * delete, clear) is overwritten with zeros. `get` returns a COPY the caller owns (and should wipe
 * with `fill(0)` when done), so a wipe here never pulls a key from under a running stream.
 */
export class DekCache {
  private readonly m = new Map<string, { key: Buffer; at: number }>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.m.size;
  }

  get(id: string): Buffer | undefined {
    const e = this.m.get(id);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (this.clock.nowMs() - e.at >= this.ttlMs) {
      this.delete(id);
      this.misses++;
      return undefined;
    }
    // LRU: move to the end
    this.m.delete(id);
    this.m.set(id, e);
    this.hits++;
    return Buffer.from(e.key);
  }

  set(id: string, key: Buffer): void {
    if (this.max <= 0 || this.ttlMs <= 0) return;
    this.delete(id);
    const own = Buffer.alloc(key.length);
    key.copy(own);
    this.m.set(id, { key: own, at: this.clock.nowMs() });
    // Only the size bound here: walking every entry for expired ones on each insert cost a busy
    // server 2-3 % of its event loop. Expired entries are refused by `get` and wiped by `sweep`,
    // which the key service runs on a timer (src/keys/index.ts).
    this.evict();
  }

  delete(id: string): void {
    const e = this.m.get(id);
    if (!e) return;
    e.key.fill(0);
    this.m.delete(id);
  }

  clear(): void {
    for (const e of this.m.values()) e.key.fill(0);
    this.m.clear();
  }

  /** Drops expired entries, then the least recently used ones over `max`. */
  sweep(): void {
    const now = this.clock.nowMs();
    for (const [id, e] of this.m) if (now - e.at >= this.ttlMs) this.delete(id);
    this.evict();
  }

  private evict(): void {
    while (this.m.size > this.max) this.delete(this.m.keys().next().value!);
  }
}
