import type { FastifyInstance, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { MonitoringConfig } from '../config/sections/monitoring.js';
import { routeGroup, type RouteGroup } from '../http/groups.js';
import { addressPrefix } from '../auth/address.js';
import { AppError } from '../shared/errors.js';

export interface Budget {
  /** requests per minute per source address (IPv4 /32, IPv6 /64); 0 = none */
  perAddress: number;
  /** requests per minute per signed-in user (or API token's user); 0 = none */
  perUser: number;
}

/**
 * Default request budgets per route group (docs/monitoring.md "Load shedding"); `monitoring.budgets`
 * overrides them group by group. They sit under the global per-address limit of src/http/build.ts
 * and beside the failed-authentication limits of src/auth: these count every request of a group.
 */
export const DEFAULT_BUDGETS: Record<RouteGroup, Budget> = {
  probes: { perAddress: 0, perUser: 0 },
  console: { perAddress: 600, perUser: 0 },
  auth: { perAddress: 0, perUser: 0 }, // sign-in has its own throttle (src/auth)
  users: { perAddress: 300, perUser: 120 },
  access: { perAddress: 300, perUser: 120 },
  vault: { perAddress: 900, perUser: 600 },
  transfer: { perAddress: 300, perUser: 240 },
  audit: { perAddress: 300, perUser: 120 },
  keys: { perAddress: 120, perUser: 60 },
  backup: { perAddress: 300, perUser: 120 },
  monitoring: { perAddress: 300, perUser: 240 },
  settings: { perAddress: 120, perUser: 60 },
  other: { perAddress: 300, perUser: 120 },
  unmatched: { perAddress: 120, perUser: 0 },
};

const limited = (what: string, seconds: number) =>
  new AppError('RATE_LIMITED', `too many requests ${what}; try again in ${seconds} s`, {
    httpStatus: 429,
    details: { retryAfterSeconds: seconds },
  });

/**
 * Load shedding, installed on the root before any route:
 * - @fastify/under-pressure: once the event loop has lagged past `pressure.maxEventLoopDelayMs` (or
 *   the heap passed `pressure.maxHeapUsedBytes`) for `pressure.sustainMs`, every request but
 *   `/healthz` gets 503 `OVERLOADED`
 *   with `Retry-After` (liveness must not fail because the process is busy; `/readyz` does, so a
 *   balancer sends traffic elsewhere);
 * - per route group, a budget per source address (checked before authentication: a flood costs no
 *   database work) and per user (checked once the caller is known), 429 with `Retry-After`.
 */
export function installShedding(app: FastifyInstance, cfg: MonitoringConfig): Promise<void> {
  const budgets: Record<string, Budget> = { ...DEFAULT_BUDGETS, ...cfg.budgets };
  const budgetOf = (req: FastifyRequest): [RouteGroup, Budget | undefined] => {
    const g = routeGroup(req.method, req.routeOptions.url);
    return [g, budgets[g]];
  };
  const perAddress = app.createRateLimit({
    timeWindow: 60_000,
    max: (req) => budgetOf(req)[1]?.perAddress ?? 0,
    keyGenerator: (req) => `a|${budgetOf(req)[0]}|${addressPrefix(req.ip)}`,
  });
  const perUser = app.createRateLimit({
    timeWindow: 60_000,
    max: (req) => budgetOf(req)[1]?.perUser ?? 0,
    keyGenerator: (req) => `u|${budgetOf(req)[0]}|${req.actor?.userId ?? req.actor?.id ?? '-'}`,
  });
  app.addHook('onRequest', async (req) => {
    const [group, b] = budgetOf(req);
    if (!b?.perAddress) return;
    const r = await perAddress(req);
    if (!r.isAllowed && r.isExceeded) throw limited(`from this address (${group})`, r.ttlInSeconds);
  });
  app.addHook('preHandler', async (req) => {
    const [group, b] = budgetOf(req);
    if (!b?.perUser || !req.actor) return;
    const r = await perUser(req);
    if (!r.isAllowed && r.isExceeded) throw limited(`for this account (${group})`, r.ttlInSeconds);
  });
  const p = cfg.pressure;
  if (!p.enabled) return Promise.resolve();
  let since: number | null = null;
  let last = 0;
  return app.register(underPressure, {
    maxEventLoopDelay: p.maxEventLoopDelayMs,
    ...(p.maxHeapUsedBytes > 0 ? { maxHeapUsedBytes: p.maxHeapUsedBytes } : {}),
    retryAfter: p.retryAfterSeconds,
    exposeStatusRoute: false,
    pressureHandler: (req, reply, type) => {
      if (req.routeOptions.url === '/healthz') return undefined; // liveness answers while busy
      // under-pressure judges one second at a time; shed only when the pressure lasts `sustainMs`
      const now = Date.now();
      if (since === null || now - last > 2000) since = now;
      last = now;
      if (now - since < p.sustainMs) return undefined;
      void reply
        .code(503)
        .header('retry-after', String(p.retryAfterSeconds))
        .header('content-type', 'application/json; charset=utf-8');
      if (req.routeOptions.url === '/readyz')
        return { status: 'not-ready', components: { pressure: 'down' } } as unknown as void;
      // a non-null result is sent as the reply (the plugin's contract; its type says void)
      return {
        error: {
          code: 'OVERLOADED',
          message: `the appliance is overloaded (${type}); try again in ${p.retryAfterSeconds} s`,
          requestId: String(req.id),
        },
      } as unknown as void;
    },
  }) as unknown as Promise<void>;
}
