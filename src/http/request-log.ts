import type { FastifyRequest } from 'fastify';

/**
 * What a request log line says about a request: the route pattern (`/api/v1/documents/:id`) and
 * its path parameters (ids), never the URL as sent. A URL may carry a query string or a path that
 * is not a route, and either may hold a name, a tag or search text (docs/formats.md "Threat
 * model (common)"). An unknown route is logged as `null` with no path at all.
 */
export function requestLogView(req: FastifyRequest): Record<string, unknown> {
  const route = req.routeOptions?.url;
  const params =
    route && req.params && typeof req.params === 'object' ? (req.params as Record<string, unknown>) : undefined;
  return {
    method: req.method,
    route: route ?? null,
    ...(params && Object.keys(params).length ? { params: { ...params } } : {}),
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
