import crypto from 'node:crypto';
import https from 'node:https';
import type { TlsOptions } from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { WindowCounters } from '../db/index.js';
import { sharedRateStore } from './rate-store.js';
import swagger from '@fastify/swagger';
import type { HttpConfig } from '../config/sections/http.js';
import type { Logger } from '../shared/logger.js';
import { installGate } from './gate.js';
import { installHeaders } from './headers.js';
import { installBrowserGate } from './browsers.js';
import { installErrorHandler } from './error-handler.js';
import { capConnections, installBodyDeadline } from './limits.js';
import { healthRoutes, type HealthCheck } from './health.js';
import { trackInFlight, type InFlight } from './shutdown.js';
import { requestLogView } from './request-log.js';
import type { Authenticator } from './permissions.js';

/** node:http without an ESM import, whose namespace reads every export, including the lazy
 * WebSocket that loads undici (~3 MB of heap the server never uses) */
const nodeHttp = process.getBuiltinModule('node:http');

export interface BuildOptions {
  http: HttpConfig;
  log: Logger;
  /** https server options; omitted in inject-only tests */
  https?: TlsOptions;
  /** wired by the identity module; absent = every non-public route answers 401 */
  auth?: Authenticator | (() => Authenticator | undefined);
  /** API plugins, registered under /api/v1 */
  api?: FastifyPluginAsync[];
  /** plugins registered at the root (console static files) */
  root?: FastifyPluginAsync[];
  /** readiness details for monitoring (not exposed by /healthz) */
  health?: HealthCheck[];
  /** global per-address rate limit (requests per minute) */
  rateLimitPerMinute?: number;
  /** counters every node shares (several nodes behind a load balancer); default: this process's memory */
  rateCounters?: WindowCounters;
  /** installed on the root before any route (request metrics, load shedding, request budgets) */
  extensions?: ((app: FastifyInstance) => Promise<void> | void)[];
}

export type App = FastifyInstance;

declare module 'fastify' {
  interface FastifyInstance {
    /** requests in flight, for a clean stop (src/http/shutdown.ts) */
    inFlight: InFlight;
  }
}

/**
 * Builds the HTTPS application without listening. Tests use `app.inject`.
 */
export async function build(opts: BuildOptions): Promise<App> {
  const { http } = opts;
  // Our own server so every timeout is set deliberately (Node's defaults check stale connections
  // only every 30 s, so a trickled-header client would linger well past headersTimeout).
  const serverOptions = {
    requestTimeout: http.requestTimeoutMs,
    headersTimeout: http.headersTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, http.headersTimeoutMs),
    maxHeaderSize: 16 * 1024,
  };
  const app = Fastify({
    // request lines carry the route pattern and ids, never the URL (it may hold confidential text)
    loggerInstance: opts.log.child({}, { serializers: { req: requestLogView as never } }) as FastifyBaseLogger,
    // only tells Fastify the scheme (its "listening at https://…" log); the factory makes the server
    ...(opts.https ? { https: opts.https } : {}),
    serverFactory: (handler) => {
      const server = opts.https
        ? https.createServer({ ...opts.https, ...serverOptions }, handler)
        : nodeHttp.createServer(serverOptions, handler);
      server.timeout = http.connectionTimeoutMs;
      capConnections(server, {
        maxConnections: http.maxConnections,
        perAddress: http.maxConnectionsPerAddress,
        trustedProxies: http.trustedProxies,
        log: opts.log,
      });
      return server as HttpServer;
    },
    genReqId: () => crypto.randomUUID(),
    bodyLimit: http.bodyLimitBytes,
    requestTimeout: http.requestTimeoutMs,
    connectionTimeout: http.connectionTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    trustProxy: http.trustedProxies.length ? http.trustedProxies : false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allErrors: false,
        allowUnionTypes: true,
      },
    },
  }) as unknown as FastifyInstance;

  app.decorate('inFlight', trackInFlight(app));
  installErrorHandler(app);
  installBrowserGate(app);
  installBodyDeadline(app, http.bodyTimeoutMs);
  await installHeaders(app, http.hstsMaxAgeSeconds);
  await app.register(rateLimit, {
    global: true,
    max: opts.rateLimitPerMinute ?? 1200,
    timeWindow: 60_000,
    keyGenerator: (req) => req.ip,
    ...(opts.rateCounters ? { store: sharedRateStore(opts.rateCounters) } : {}),
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
  });
  for (const x of opts.extensions ?? []) await x(app);
  // after the extensions: load shedding answers a flood before any authentication work
  const auth = opts.auth;
  installGate(app, typeof auth === 'function' ? auth : () => auth);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Coffre API', version: '1' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: '__Host-coffre' },
        },
      },
    },
  });

  await app.register(healthRoutes, { checks: opts.health ?? [] });
  await app.register(
    async (api) => {
      api.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
      for (const p of opts.api ?? []) await api.register(p);
    },
    { prefix: '/api/v1' },
  );
  for (const p of opts.root ?? []) await app.register(p);
  return app;
}
