import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** How long a client refused by a shutdown should wait before trying again (Retry-After, seconds). */
export const SHUTDOWN_RETRY_AFTER_S = 5;

/**
 * Requests in flight, for a clean stop (src/main.ts `serve`):
 * - `refuse()` answers every request that has no answer yet with 503 `SHUTTING_DOWN` and
 *   `Retry-After`, then closes its connection (its handler sees the body end early and cleans up);
 * - `settled(ms)` waits until every route handler has returned (so their clean-up, e.g. an upload
 *   discarding its blob and data key, ran) before the caller closes the database.
 */
export interface InFlight {
  readonly size: number;
  refuse(): number;
  settled(timeoutMs: number): Promise<boolean>;
}

export function trackInFlight(app: FastifyInstance): InFlight {
  const open = new Map<FastifyRequest, FastifyReply>();
  const handlers = new Set<Promise<unknown>>();
  const refused = new WeakSet<FastifyRequest>();
  app.addHook('onRequest', async (req, reply) => {
    open.set(req, reply);
  });
  app.addHook('onResponse', async (req) => {
    open.delete(req);
  });
  app.addHook('onRequestAbort', async (req) => {
    open.delete(req);
  });
  // every route's handler, wrapped: its promise (clean-up included) is awaited by `settled`
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      const r = handler.call(this, req, reply) as unknown;
      if (!r || typeof (r as Promise<unknown>).then !== 'function') return r;
      const p = Promise.resolve(r).catch((e: unknown) => {
        // answered by refuse(): the handler's own error (its body was cut) has nobody to go to
        if (refused.has(req))
          return req.log.info({ code: (e as { code?: string }).code }, 'request refused at shutdown stopped');
        throw e;
      });
      handlers.add(p);
      void p.then(
        () => handlers.delete(p),
        () => handlers.delete(p),
      );
      return p;
    } as typeof handler;
  });
  return {
    get size() {
      return open.size;
    },
    refuse() {
      let n = 0;
      for (const [req, reply] of open) {
        open.delete(req);
        const res = reply.raw;
        if (res.headersSent || res.writableEnded) {
          res.destroy();
          continue;
        }
        n++;
        refused.add(req);
        const body = JSON.stringify({
          error: {
            code: 'SHUTTING_DOWN',
            message: 'the appliance is stopping; nothing was stored by this request — try again shortly',
            requestId: String(req.id),
          },
        });
        res.writeHead(503, {
          'content-type': 'application/json; charset=utf-8',
          'retry-after': String(SHUTDOWN_RETRY_AFTER_S),
          connection: 'close',
          'content-length': Buffer.byteLength(body),
        });
        // once the answer is out, the request's body is cut: its handler stops and cleans up
        res.end(body, () => req.raw.destroy());
        req.log.warn(
          { event: 'http.refused_at_shutdown', reqId: req.id, url: req.routeOptions.url },
          'request still running at the end of the shutdown grace: answered 503',
        );
      }
      return n;
    },
    async settled(timeoutMs) {
      const end = Date.now() + timeoutMs;
      while (handlers.size) {
        const left = end - Date.now();
        if (left <= 0) return false;
        await Promise.race([Promise.allSettled([...handlers]), new Promise((r) => setTimeout(r, left).unref())]);
      }
      return true;
    },
  };
}
