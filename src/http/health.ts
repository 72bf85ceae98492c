import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';

/** A readiness probe contributed by a module (HSM, database…): `/readyz` and monitoring, not `/healthz`. */
export interface HealthCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

export interface HealthResult {
  name: string;
  ok: boolean;
  /** why it is down (never a secret); only shown to signed-in operators */
  detail?: string;
  ms: number;
}

/** Runs every check in parallel; a check that throws or takes longer than `timeoutMs` is down. */
export async function runHealthChecks(checks: readonly HealthCheck[], timeoutMs = 2000): Promise<HealthResult[]> {
  return Promise.all(
    checks.map(async (c) => {
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const r = await Promise.race([
          c.check(),
          new Promise<never>(
            (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)),
          ),
        ]);
        return {
          name: c.name,
          ok: r.ok === true,
          ...(r.detail !== undefined ? { detail: r.detail } : {}),
          ms: Math.round(performance.now() - t0),
        };
      } catch (e) {
        return {
          name: c.name,
          ok: false,
          detail: (e as NodeJS.ErrnoException).code ?? (e as Error).message,
          ms: Math.round(performance.now() - t0),
        };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

const Components = Type.Record(Type.String(), Type.String({ enum: ['up', 'down'] }));

/**
 * `GET /healthz`: liveness only (the process answers), no details. `GET /readyz`: readiness, one
 * state per component (database, keys, storage, audit export…), 503 when any is down, so a load
 * balancer stops sending traffic. Both public; /readyz runs its checks at most once a second
 * (a flood of probes cannot reach the HSM) and shows no detail (operators read them in the
 * console).
 */
export const healthRoutes: FastifyPluginAsync<{ checks: HealthCheck[] }> = async (app, opts) => {
  app.get(
    '/healthz',
    {
      config: { public: true, rateLimit: false },
      schema: { hide: true, response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
  let last: { at: number; result: Promise<HealthResult[]> } | undefined;
  app.get(
    '/readyz',
    {
      config: { public: true, rateLimit: false },
      schema: {
        hide: true,
        response: {
          200: Type.Object({ status: Type.Literal('ready'), components: Components }),
          503: Type.Object({ status: Type.Literal('not-ready'), components: Components }),
        },
      },
    },
    async (_req, reply) => {
      const now = Date.now();
      if (!last || now - last.at >= 1000) last = { at: now, result: runHealthChecks(opts.checks) };
      const results = await last.result;
      const components = Object.fromEntries(results.map((r) => [r.name, r.ok ? ('up' as const) : ('down' as const)]));
      reply.header('cache-control', 'no-store');
      if (results.every((r) => r.ok)) return { status: 'ready' as const, components };
      return reply.code(503).send({ status: 'not-ready' as const, components });
    },
  );
};
