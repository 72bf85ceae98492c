import type { FastifyRequest } from 'fastify';

/**
 * Route-permission gate types (default deny: docs/architecture.md "Invariants").
 * Every route declares `config: { permission: '…' }` or `config: { public: true }`.
 */
export type Permission = string;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** what the caller needs; checked before the handler runs */
    permission?: Permission;
    /** reachable without authentication (login, health, enrolment) */
    public?: boolean;
    /** a streamed upload: once authenticated, its body is exempt from http.bodyTimeoutMs (http/limits.ts) */
    longBody?: boolean;
  }
  interface FastifyRequest {
    /** set by the gate for non-public routes */
    actor?: Actor;
  }
}

/** Who is calling. Modules read `req.actor`; the audit trail records `actor.id`. */
export interface Actor {
  /** 'user:<id>', 'token:<id>', 'local:<os-user>', 'job:<name>' */
  id: string;
  kind: 'user' | 'token' | 'local' | 'job';
  userId?: string;
  username?: string;
  roles: readonly string[];
  /** token scopes, when authenticated by an API token */
  scopes?: readonly string[];
  sessionId?: string;
  /** the user's chosen language ('en', 'fr'), or null: the request's Accept-Language (docs/i18n.md) */
  language?: string | null;
}

/**
 * What the identity module plugs into the gate. Until it is wired, every non-public route
 * answers 401 (deny by default).
 */
export interface Authenticator {
  /** resolves the caller from cookies or `Authorization: Bearer`, or throws 401 */
  authenticate(req: FastifyRequest): Promise<Actor>;
  /** throws 403 when the actor lacks the permission */
  authorize(actor: Actor, permission: Permission, req: FastifyRequest): Promise<void>;
}
