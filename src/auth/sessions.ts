import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuthSchema, AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { newId, randomToken, sha256 } from './secrets.js';

export const SESSION_COOKIE = '__Host-coffre';

export interface SessionConfig {
  idleTimeoutMinutes: number;
  absoluteTimeoutHours: number;
}

export interface SessionRow {
  id: string;
  userId: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string | null;
  userAgent: string | null;
}

export type SessionLookup =
  | { ok: true; session: SessionRow }
  | { ok: false; reason: 'unknown' | 'ended' | 'idle' | 'expired'; sessionId?: string; userId?: string };

/** S1: the cookie attributes: `__Host-` prefix, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain. */
export function sessionCookie(secret: string): string {
  return `${SESSION_COOKIE}=${secret}; Path=/; Secure; HttpOnly; SameSite=Strict`;
}
export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** the browser a user signed in from (known device: no sign-in friction); same attributes, kept for `maxAgeDays` */
export const DEVICE_COOKIE = '__Host-coffre-device';
export function deviceCookie(secret: string, maxAgeDays: number): string {
  return `${DEVICE_COOKIE}=${secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${maxAgeDays * 86_400}`;
}

/** S5: the CSRF token is derived from the session secret (nothing more to store or leak). */
export function csrfTokenFor(secret: string): string {
  return crypto.createHmac('sha256', secret).update('coffre-csrf-v1').digest('base64url');
}

/** Reads one cookie from a Cookie header (the last occurrence wins). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) found = part.slice(i + 1).trim();
  }
  return found;
}

/**
 * Server-side sessions (S2–S4): the cookie holds 256 random bits; the database keeps only their
 * SHA-256, the idle and absolute deadlines, and when and why a session ended.
 */
export class SessionStore {
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly cfg: SessionConfig,
  ) {}

  get idleMs(): number {
    return this.cfg.idleTimeoutMinutes * 60_000;
  }

  async create(
    trx: Kysely<AuthSchema>,
    userId: string,
    source: { ip?: string | undefined; userAgent?: string | undefined },
  ): Promise<{ id: string; secret: string; csrfToken: string; expiresAt: number }> {
    const now = this.clock.nowMs();
    const secret = randomToken(32);
    const id = newId();
    const expiresAt = now + this.cfg.absoluteTimeoutHours * 3_600_000;
    await trx
      .insertInto('sessions')
      .values({
        id,
        secret_hash: sha256(secret),
        user_id: userId,
        created_at: now,
        last_seen_at: now,
        expires_at: expiresAt,
        ended_at: null,
        end_reason: null,
        ip: source.ip ?? null,
        user_agent: source.userAgent?.slice(0, 300) ?? null,
      })
      .execute();
    return { id, secret, csrfToken: csrfTokenFor(secret), expiresAt };
  }

  /** Finds a live session; marks idle/expired ones as ended (the caller audits that). */
  async lookup(secret: string): Promise<SessionLookup> {
    const row = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('secret_hash', '=', sha256(secret))
      .executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.ended_at !== null) return { ok: false, reason: 'ended', sessionId: row.id, userId: row.user_id };
    const now = this.clock.nowMs();
    const reason =
      now >= Number(row.expires_at) ? 'expired' : now - Number(row.last_seen_at) >= this.idleMs ? 'idle' : undefined;
    if (reason) {
      const r = await this.db
        .updateTable('sessions')
        .set({ ended_at: now, end_reason: reason })
        .where('id', '=', row.id)
        .where('ended_at', 'is', null)
        .executeTakeFirst();
      // only the request that ended it reports the expiry (audited once)
      return Number(r.numUpdatedRows) === 1
        ? { ok: false, reason, sessionId: row.id, userId: row.user_id }
        : { ok: false, reason: 'ended', sessionId: row.id, userId: row.user_id };
    }
    // sliding idle deadline; written at most every 15 s to spare the database
    if (now - Number(row.last_seen_at) > 15_000) {
      // not awaited: a write waiting for another process's database lock must not hold up a read
      void this.db
        .updateTable('sessions')
        .set({ last_seen_at: now })
        .where('id', '=', row.id)
        .execute()
        .catch(() => undefined);
    }
    return {
      ok: true,
      session: {
        id: row.id,
        userId: row.user_id,
        createdAt: Number(row.created_at),
        lastSeenAt: now,
        expiresAt: Number(row.expires_at),
        ip: row.ip,
        userAgent: row.user_agent,
      },
    };
  }

  /** ends one session; returns whether it was live */
  async end(trx: Kysely<AuthSchema>, id: string, reason: string, userId?: string): Promise<boolean> {
    let q = trx
      .updateTable('sessions')
      .set({ ended_at: this.clock.nowMs(), end_reason: reason })
      .where('id', '=', id)
      .where('ended_at', 'is', null);
    if (userId) q = q.where('user_id', '=', userId);
    return Number((await q.executeTakeFirst()).numUpdatedRows) === 1;
  }

  /** ends every live session of a user (but `except`); returns how many */
  async endAll(trx: Kysely<AuthSchema>, userId: string, reason: string, except?: string): Promise<number> {
    let q = trx
      .updateTable('sessions')
      .set({ ended_at: this.clock.nowMs(), end_reason: reason })
      .where('user_id', '=', userId)
      .where('ended_at', 'is', null);
    if (except) q = q.where('id', '!=', except);
    return Number((await q.executeTakeFirst()).numUpdatedRows);
  }

  async listLive(userId: string): Promise<SessionRow[]> {
    const now = this.clock.nowMs();
    const rows = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', now)
      .where('last_seen_at', '>', now - this.idleMs)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      createdAt: Number(r.created_at),
      lastSeenAt: Number(r.last_seen_at),
      expiresAt: Number(r.expires_at),
      ip: r.ip,
      userAgent: r.user_agent,
    }));
  }
}
