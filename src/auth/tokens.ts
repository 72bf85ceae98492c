import { isoOrNull } from '../shared/time.js';
import type { Kysely } from 'kysely';
import type { AuthSchema, AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { AppError, errors } from '../shared/errors.js';
import { ALL_PERMISSIONS } from '../access/index.js';
import { newId, randomToken, sha256 } from './secrets.js';

export const TOKEN_PREFIX = 'cft_';

export interface TokenView {
  id: string;
  userId: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface TokenConfig {
  defaultTtlDays: number;
  maxTtlDays: number;
}

/**
 * API tokens (Z3): per user, scoped (a subset of permission names; the effective rights are the
 * scopes AND the user's current role), expiring, stored as SHA-256, shown once, revocable.
 */
export class ApiTokens {
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly cfg: TokenConfig,
  ) {}

  static checkScopes(scopes: readonly string[]): void {
    const bad = scopes.filter((s) => !(ALL_PERMISSIONS as readonly string[]).includes(s));
    if (bad.length)
      throw errors.usage(
        `unknown scope(s): ${bad.join(', ')}`,
        `scopes are permission names: ${ALL_PERMISSIONS.join(', ')}`,
      );
  }

  /**
   * Z5: the scopes a new token gets: those asked for (all `allowed` when none are), refused with
   * 403 when any is above `allowed` (the creator's role, or the creating token's own scopes)
   * and not one of the `optIn` scopes (given only when named).
   * Every path that mints a token goes through here.
   */
  static grant(
    allowed: readonly string[],
    requested: readonly string[] | undefined,
    optIn: readonly string[] = [],
  ): string[] {
    const scopes = requested?.length ? [...requested] : [...allowed];
    ApiTokens.checkScopes(scopes);
    const extra = scopes.filter((s) => !allowed.includes(s) && !optIn.includes(s));
    if (extra.length)
      throw new AppError('FORBIDDEN', `you do not hold: ${extra.join(', ')}`, { httpStatus: 403, exitCode: 1 });
    return scopes;
  }

  async create(
    trx: Kysely<AuthSchema>,
    userId: string,
    o: { name: string; scopes: readonly string[]; ttlDays?: number | undefined },
  ): Promise<{ token: string; view: TokenView }> {
    ApiTokens.checkScopes(o.scopes);
    const ttl = o.ttlDays ?? this.cfg.defaultTtlDays;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > this.cfg.maxTtlDays)
      throw errors.usage(`token lifetime must be 1 to ${this.cfg.maxTtlDays} days`);
    const now = this.clock.nowMs();
    const id = newId();
    const token = `${TOKEN_PREFIX}${randomToken(32)}`;
    const row = {
      id,
      user_id: userId,
      name: o.name.slice(0, 100),
      token_hash: sha256(token),
      scopes: JSON.stringify([...new Set(o.scopes)].sort()),
      created_at: now,
      expires_at: now + ttl * 86_400_000,
      last_used_at: null,
      revoked_at: null,
      revoked_by: null,
    };
    await trx.insertInto('api_tokens').values(row).execute();
    return { token, view: toView(row) };
  }

  /** the live token for a bearer value (updates last use at most once a minute) */
  async lookup(bearer: string): Promise<{ id: string; userId: string; scopes: string[] } | undefined> {
    if (!bearer.startsWith(TOKEN_PREFIX) || bearer.length > 200) return undefined;
    const row = await this.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('token_hash', '=', sha256(bearer))
      .executeTakeFirst();
    const now = this.clock.nowMs();
    if (!row || row.revoked_at !== null || Number(row.expires_at) <= now) return undefined;
    if (row.last_used_at === null || now - Number(row.last_used_at) > 60_000) {
      // not awaited: a write waiting for another process's database lock must not hold up a read
      void this.db
        .updateTable('api_tokens')
        .set({ last_used_at: now })
        .where('id', '=', row.id)
        .execute()
        .catch(() => undefined);
    }
    return { id: row.id, userId: row.user_id, scopes: JSON.parse(row.scopes) as string[] };
  }

  async list(userId?: string): Promise<TokenView[]> {
    let q = this.db.selectFrom('api_tokens').selectAll().orderBy('created_at', 'desc');
    if (userId) q = q.where('user_id', '=', userId);
    return (await q.execute()).map(toView);
  }

  async get(id: string): Promise<TokenView | undefined> {
    const r = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toView(r) : undefined;
  }

  async revoke(trx: Kysely<AuthSchema>, id: string, by: string, userId?: string): Promise<boolean> {
    let q = trx
      .updateTable('api_tokens')
      .set({ revoked_at: this.clock.nowMs(), revoked_by: by })
      .where('id', '=', id)
      .where('revoked_at', 'is', null);
    if (userId) q = q.where('user_id', '=', userId);
    return Number((await q.executeTakeFirst()).numUpdatedRows) === 1;
  }

  async revokeAll(trx: Kysely<AuthSchema>, userId: string, by: string): Promise<number> {
    const r = await trx
      .updateTable('api_tokens')
      .set({ revoked_at: this.clock.nowMs(), revoked_by: by })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}

function toView(r: AuthSchema['api_tokens']): TokenView {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    scopes: JSON.parse(r.scopes) as string[],
    createdAt: new Date(Number(r.created_at)).toISOString(),
    expiresAt: new Date(Number(r.expires_at)).toISOString(),
    lastUsedAt: isoOrNull(r.last_used_at),
    revokedAt: isoOrNull(r.revoked_at),
  };
}
