import type { FastifyInstance, RouteOptions } from 'fastify';
import { AppError, errors } from '../shared/errors.js';
import type { Authenticator } from './permissions.js';

/** One registered route and what it declared (the access matrix test walks them all). */
export interface DeclaredRoute {
  method: string;
  url: string;
  permission?: string;
  public: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** every route registered on this app, with its declared permission */
    declaredRoutes: readonly DeclaredRoute[];
  }
}

/**
 * Default deny. Registers an onRoute hook that refuses any route without a declared permission
 * (start-up fails naming it) and an onRequest hook that authenticates and authorises every
 * non-public route before anything else runs (even before a body is read).
 */
export function installGate(app: FastifyInstance, getAuth: () => Authenticator | undefined): void {
  const undeclared: string[] = [];
  const table: DeclaredRoute[] = [];
  app.decorate('declaredRoutes', table);
  app.addHook('onRoute', (route: RouteOptions) => {
    const cfg = (route.config ?? {}) as { permission?: string; public?: boolean };
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods)
      if (m !== 'HEAD' && m !== 'OPTIONS')
        table.push({
          method: m,
          url: route.url,
          ...(cfg.permission !== undefined ? { permission: cfg.permission } : {}),
          public: cfg.public === true,
        });
    if (methods.every((m) => m === 'HEAD' || m === 'OPTIONS') && route.prefixTrailingSlash) return;
    if (cfg.public === true && cfg.permission !== undefined) {
      undeclared.push(`${methods.join(',')} ${route.url} (declares both public and a permission)`);
    } else if (cfg.public !== true && (typeof cfg.permission !== 'string' || cfg.permission.length === 0)) {
      undeclared.push(`${methods.join(',')} ${route.url}`);
    }
  });
  app.addHook('onReady', async () => {
    if (undeclared.length) {
      throw new AppError('ROUTE_PERMISSION_MISSING', `route(s) declare no permission: ${undeclared.join('; ')}`, {
        exitCode: 1,
        hint: 'add config.permission or config.public to each route',
      });
    }
  });
  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config as { permission?: string; public?: boolean } | undefined;
    if (!req.routeOptions.url) return; // 404: the not-found handler answers
    if (cfg?.public === true) return;
    const auth = getAuth();
    if (!auth) throw errors.unauthenticated();
    const actor = await auth.authenticate(req);
    req.actor = actor;
    await auth.authorize(actor, cfg?.permission as string, req);
  });
}
