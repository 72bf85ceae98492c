import type { Kysely } from 'kysely';
import type { AuthSchema } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { newId, randomToken, sha256 } from './secrets.js';

export type LinkPurpose = 'enrol' | 'reset';

/**
 * One-time enrolment and reset links (R1–R3, R5). The token has 256 bits from the CSPRNG; only its
 * SHA-256 is stored; issuing a link voids the user's older links of the same purpose; a link is
 * consumed by one atomic conditional update, so of two parallel submissions exactly one wins.
 * The URL is built from the configured public URL; the token travels in the fragment (`#/enrol/…`),
 * which browsers never send to a server nor put in a Referer.
 */
export class Links {
  constructor(
    private readonly clock: Clock,
    private readonly publicUrl: string,
    private readonly ttlHours: number,
  ) {}

  url(purpose: LinkPurpose, token: string): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/#/${purpose}/${token}`;
  }

  /** extracts the token from a link (or accepts a bare token) */
  static tokenOf(urlOrToken: string): string {
    const m = /(?:^|\/)(?:enrol|reset)\/([A-Za-z0-9_-]{20,})\/?$/.exec(urlOrToken.trim());
    return m ? m[1]! : urlOrToken.trim();
  }

  async issue(
    trx: Kysely<AuthSchema>,
    userId: string,
    purpose: LinkPurpose,
    by: string,
  ): Promise<{ id: string; url: string; expiresAt: number }> {
    const now = this.clock.nowMs();
    await trx
      .updateTable('one_time_links')
      .set({ voided_at: now })
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('voided_at', 'is', null)
      .execute();
    const token = randomToken(32);
    const id = newId();
    const expiresAt = now + this.ttlHours * 3_600_000;
    await trx
      .insertInto('one_time_links')
      .values({
        id,
        user_id: userId,
        purpose,
        token_hash: sha256(token),
        created_at: now,
        created_by: by,
        expires_at: expiresAt,
        used_at: null,
        voided_at: null,
      })
      .execute();
    return { id, url: this.url(purpose, token), expiresAt };
  }

  /** the live link's row for a token, without consuming it */
  async peek(
    db: Kysely<AuthSchema>,
    purpose: LinkPurpose,
    token: string,
  ): Promise<{ id: string; userId: string; createdBy: string } | undefined> {
    const row = await db
      .selectFrom('one_time_links')
      .select(['id', 'user_id', 'created_by'])
      .where('token_hash', '=', sha256(token))
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('voided_at', 'is', null)
      .where('expires_at', '>', this.clock.nowMs())
      .executeTakeFirst();
    return row ? { id: row.id, userId: row.user_id, createdBy: row.created_by } : undefined;
  }

  /** consumes the link; true for exactly one caller */
  async consume(trx: Kysely<AuthSchema>, id: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const r = await trx
      .updateTable('one_time_links')
      .set({ used_at: now })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('voided_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async voidOne(trx: Kysely<AuthSchema>, id: string): Promise<void> {
    await trx
      .updateTable('one_time_links')
      .set({ voided_at: this.clock.nowMs() })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('voided_at', 'is', null)
      .execute();
  }

  async voidAll(trx: Kysely<AuthSchema>, userId: string): Promise<void> {
    await trx
      .updateTable('one_time_links')
      .set({ voided_at: this.clock.nowMs() })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .where('voided_at', 'is', null)
      .execute();
  }
}
