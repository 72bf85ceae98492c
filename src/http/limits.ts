import net from 'node:net';
import type { Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../shared/logger.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** the body deadline of this request (cleared once it is answered, or for an authenticated upload) */
    bodyTimer?: NodeJS.Timeout;
  }
}

/**
 * Slow bodies (docs/brute-force.md): every request's body must be complete within `bodyTimeoutMs`,
 * except on routes declaring `config.longBody` (streamed uploads) once the gate has authenticated
 * the caller. Past it the client gets 408 and the socket is closed. Install before the gate, so
 * the deadline runs while the caller is being authenticated too.
 */
export function installBodyDeadline(app: FastifyInstance, bodyTimeoutMs: number): void {
  app.addHook('onRequest', async (req, reply) => {
    const raw = req.raw;
    // no body (no Content-Length, no Transfer-Encoding) or already received: nothing to wait for
    if (raw.complete || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined))
      return;
    req.bodyTimer = setTimeout(() => {
      if (raw.complete || reply.raw.writableEnded) return;
      req.log.info(
        { event: 'http.body_timeout', route: req.routeOptions.url },
        'request body too slow: connection closed',
      );
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(408, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
        reply.raw.end(
          JSON.stringify({
            error: {
              code: 'BODY_TIMEOUT',
              message: `the request body did not arrive within ${Math.round(bodyTimeoutMs / 1000)} s`,
              requestId: String(req.id),
            },
          }),
        );
      }
      raw.socket?.destroySoon();
      setTimeout(() => raw.socket?.destroy(), 1000).unref();
    }, bodyTimeoutMs);
    req.bodyTimer.unref();
    raw.once('end', () => clearTimeout(req.bodyTimer));
  });
  app.addHook('onResponse', async (req) => clearTimeout(req.bodyTimer));
  app.addHook('onRequestAbort', async (req) => clearTimeout(req.bodyTimer));
  app.addHook('preParsing', async (req) => {
    if (req.routeOptions.config?.longBody === true && req.actor) clearTimeout(req.bodyTimer);
  });
}

/**
 * Caps open connections (docs/brute-force.md): `maxConnections` in total (Node refuses more) and
 * `perAddress` from one peer address, except the trusted proxies (many clients share their
 * address: only the total applies to them). A connection over a cap is closed at once.
 */
export function capConnections(
  server: Server,
  o: { maxConnections: number; perAddress: number; trustedProxies: readonly string[]; log: Logger },
): void {
  server.maxConnections = o.maxConnections;
  const open = new Map<string, number>();
  const proxies = new net.BlockList();
  for (const p of o.trustedProxies) {
    const [addr, bits] = p.split('/') as [string, string | undefined];
    const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (!net.isIP(addr)) continue;
    if (bits !== undefined) proxies.addSubnet(addr, Number(bits), type);
    else proxies.addAddress(addr, type);
  }
  let warned = 0;
  server.on('connection', (socket: net.Socket) => {
    const addr = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    if (proxies.check(addr, net.isIPv6(addr) ? 'ipv6' : 'ipv4')) return;
    const n = (open.get(addr) ?? 0) + 1;
    if (n > o.perAddress) {
      if (Date.now() - warned > 60_000) {
        warned = Date.now();
        o.log.warn(
          { event: 'http.connections_capped', remoteAddress: addr, limit: o.perAddress },
          'too many connections from one address: new ones are closed',
        );
      }
      socket.destroy();
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}
