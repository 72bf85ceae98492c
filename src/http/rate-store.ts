import type { WindowCounters } from '../db/index.js';

type Incr = (err: Error | null, res?: { current: number; ttl: number }) => void;

/**
 * A store for @fastify/rate-limit over shared window counters, so that the global limit, the
 * per-route limits and the load-shedding budgets count every node's hits. The plugin builds it
 * with `new Store(options)` and derives one per route with `child()`, whose keys it prefixes.
 */
export function sharedRateStore(counters: WindowCounters, now: () => number = Date.now) {
  return class SharedRateStore {
    private readonly prefix: string;

    constructor(prefix?: unknown) {
      this.prefix = typeof prefix === 'string' ? prefix : '';
    }

    incr(key: string, cb: Incr, timeWindow: number): void {
      const t = now();
      counters.incr(`rate|${this.prefix}${key}`, timeWindow, t).then(
        (r) => cb(null, { current: r.count, ttl: Math.max(0, r.resetAtMs - t) }),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    }

    // the plugin passes its merged route parameters, whose routeInfo names the route (empty for createRateLimit)
    child(o: object): SharedRateStore {
      const r = (o as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo ?? {};
      return new SharedRateStore(`${this.prefix}${String(r.method ?? '')}${r.url ?? ''}-`);
    }
  };
}
