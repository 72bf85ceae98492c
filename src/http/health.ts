import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';

/** A readiness probe contributed by a module (HSM, database…); used by monitoring, not /healthz. */
export interface HealthCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

/** `GET /healthz`: liveness only, no details (public). */
export const healthRoutes: FastifyPluginAsync<{ checks: HealthCheck[] }> = async (app) => {
  app.get(
    '/healthz',
    {
      config: { public: true, rateLimit: false },
      schema: { hide: true, response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
};
