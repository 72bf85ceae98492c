import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from '../shared/logger.js';

/**
 * Serves the web console built by `npm run build` (scripts/build-console.mjs) from the appliance's
 * own HTTPS origin: `/` answers the single page (never cached), `/assets/<name>-<hash>.<ext>` the
 * fingerprinted bundle (cached for a year, immutable). Every route is public: these files carry
 * no data, and everything the console shows comes from /api/v1 behind the gate. The core's
 * security headers (CSP without 'unsafe-inline', nosniff, no-referrer…) and its obsolete-browser
 * gate (426) apply to them like to any other route.
 */
export interface ConsoleOptions {
  /** the built console (default: <project>/dist/console) */
  dir?: string;
  log: Logger;
}

/** <project>/dist/console, from either src/console/serve.ts or dist/src/console/serve.js */
export function defaultConsoleDir(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new Error('console: project root not found');
    d = up;
  }
  return path.join(d, 'dist', 'console');
}

const ASSET = /^[A-Za-z0-9_-]+\.(?:js|css|svg|woff2|png)$/;

export function consolePlugin(opts: ConsoleOptions): FastifyPluginAsync {
  return async (app) => {
    const dir = opts.dir ?? defaultConsoleDir();
    const indexFile = path.join(dir, 'index.html');
    if (!fs.existsSync(indexFile)) {
      opts.log.warn({ dir }, 'web console not built (run scripts/setup or npm run build): / answers 503');
      app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
        reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send('The Coffre web console is not built on this appliance: run scripts/setup.\n'),
      );
      return;
    }
    const index = fs.readFileSync(indexFile);
    await app.register(fastifyStatic, { root: path.join(dir, 'assets'), serve: false, decorateReply: true });

    app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(index),
    );
    app.get<{ Params: { file: string } }>(
      '/assets/:file',
      { config: { public: true }, schema: { hide: true } },
      async (req, reply) => {
        const { file } = req.params;
        if (!ASSET.test(file)) return reply.callNotFound();
        return reply.sendFile(file, {
          immutable: true,
          maxAge: 365 * 24 * 3600 * 1000,
          dotfiles: 'deny',
          index: false,
        });
      },
    );
  };
}
