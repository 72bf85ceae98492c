import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import type { Actor, Authenticator } from '../http/index.js';
import type { Auditor } from '../audit/types.js';
import type { Policy } from '../access/index.js';
import type { Clock } from '../shared/clock.js';
import type { AuthDb } from '../db/index.js';
import { errors } from '../shared/errors.js';
import { auditSource } from '../audit/index.js';
import { SESSION_COOKIE, csrfTokenFor, readCookie, type SessionStore } from './sessions.js';
import type { ApiTokens } from './tokens.js';
import { authErrors } from './errors.js';
import { safeEqual } from './secrets.js';
import { addressPrefix } from './address.js';
import type { FailedAuthLimiter } from './flood.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function sourceOf(req: FastifyRequest) {
  return auditSource(req);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the raw session secret of a cookie-authenticated request (to derive its CSRF token) */
    sessionSecret?: string;
  }
}

/**
 * The route gate's Authenticator (Z1, S1–S5, Z3):
 * - `Authorization: Bearer cft_…` → an API token (scoped, expiring, revocable), or
 * - the `__Host-coffre` session cookie → a server-side session (idle and absolute timeouts);
 *   state-changing requests also need `X-CSRF-Token` and a same-origin `Origin`/`Sec-Fetch-Site`.
 * Anything else: 401. The user must still be active. Authorisation goes through the Policy;
 * refusals are audited. Failed bearer/cookie authentications are counted per address and cut
 * (429) before any database work past a budget (`FailedAuthLimiter`, recorded in aggregate).
 */
export class SessionAuthenticator implements Authenticator {
  constructor(
    private readonly o: {
      db: AuthDb;
      clock: Clock;
      sessions: SessionStore;
      tokens: ApiTokens;
      policy: Policy;
      audit: Auditor;
      publicOrigin: string | undefined;
      limiter: FailedAuthLimiter;
    },
  ) {}

  private async activeUser(id: string) {
    return this.o.db
      .selectFrom('users')
      .select(['id', 'username', 'role', 'state', 'last_seen_at', 'language'])
      .where('id', '=', id)
      .executeTakeFirst();
  }

  private async touch(userId: string, lastSeen: number | null): Promise<void> {
    const now = this.o.clock.nowMs();
    // not awaited: a write waiting for another process's database lock must not hold up a read
    if (lastSeen === null || now - Number(lastSeen) > 60_000)
      void this.o.db
        .updateTable('users')
        .set({ last_seen_at: now })
        .where('id', '=', userId)
        .execute()
        .catch(() => undefined);
  }

  async authenticate(req: FastifyRequest): Promise<Actor> {
    const authz = req.headers.authorization;
    const bearer = authz === undefined ? undefined : (/^Bearer\s+(\S+)$/i.exec(authz)?.[1] ?? authz);
    const secret = authz === undefined ? readCookie(req.headers.cookie, SESSION_COOKIE) : undefined;
    // B5: a flood of bad credentials is cut per address before any database work
    const prefix = addressPrefix(req.ip);
    const ua = typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined;
    const credential = bearer ?? secret;
    if (credential !== undefined) {
      const wait = this.o.limiter.check(prefix, credential, ua);
      if (wait) {
        // held before the answer: a flooder that waits for it sends a few a second, not thousands
        await delay(this.o.limiter.refusalDelayMs);
        throw authErrors.rateLimited(wait);
      }
    }
    const failed = () => {
      this.o.limiter.failed(prefix, ua);
      return errors.unauthenticated();
    };
    if (bearer !== undefined) {
      const t = bearer !== authz ? await this.o.tokens.lookup(bearer) : undefined;
      const u = t ? await this.activeUser(t.userId) : undefined;
      if (!t || !u || u.state !== 'active') throw failed();
      this.o.limiter.vouch(bearer);
      await this.touch(u.id, u.last_seen_at);
      return {
        id: `token:${t.id}`,
        kind: 'token',
        userId: u.id,
        username: u.username,
        roles: [u.role],
        scopes: t.scopes,
        language: u.language,
      };
    }
    if (!secret) throw errors.unauthenticated();
    if (secret.length > 100) throw failed();
    const r = await this.o.sessions.lookup(secret);
    if (!r.ok) {
      if (r.reason === 'idle' || r.reason === 'expired') {
        await this.o.audit.recordNow({
          action: 'session.expire',
          actor: `user:${r.userId}`,
          outcome: 'success',
          reason: r.reason.toUpperCase(),
          targets: { user: r.userId!, session: r.sessionId! },
          source: sourceOf(req),
        });
      }
      throw failed();
    }
    const u = await this.activeUser(r.session.userId);
    if (!u || u.state !== 'active') throw failed();
    this.o.limiter.vouch(secret);
    if (!SAFE_METHODS.has(req.method)) {
      try {
        this.checkCsrf(req, secret);
      } catch (e) {
        // L4: a refused cookie request is recorded (it needs a live session: no anonymous flood)
        await this.o.audit.recordNow({
          action: 'auth.csrf',
          actor: `user:${u.id}`,
          outcome: 'denied',
          reason: 'CSRF',
          targets: { user: u.id, method: req.method, route: req.routeOptions.url ?? 'unknown' },
          source: sourceOf(req),
        });
        throw e;
      }
    }
    req.sessionSecret = secret;
    await this.touch(u.id, u.last_seen_at);
    return {
      id: `user:${u.id}`,
      kind: 'user',
      userId: u.id,
      username: u.username,
      roles: [u.role],
      sessionId: r.session.id,
      language: u.language,
    };
  }

  /** S5: synchroniser token (derived from the session) AND same-origin request */
  private checkCsrf(req: FastifyRequest, secret: string): void {
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !safeEqual(token, csrfTokenFor(secret))) throw authErrors.csrf();
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (origin !== undefined) {
      if (!this.o.publicOrigin || origin !== this.o.publicOrigin) throw authErrors.csrf();
    } else if (site !== 'same-origin') throw authErrors.csrf();
  }

  async authorize(actor: Actor, permission: string, req: FastifyRequest): Promise<void> {
    if (await this.o.policy.can(actor, permission)) return;
    await this.o.audit.recordNow({
      action: 'access.denied',
      actor: actor.id,
      outcome: 'denied',
      reason: 'PERMISSION',
      targets: { permission, method: req.method, route: req.routeOptions.url ?? 'unknown' },
      source: sourceOf(req),
    });
    throw errors.forbidden();
  }
}
