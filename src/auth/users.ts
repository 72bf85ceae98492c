import { isoOrNull } from '../shared/time.js';
import type { Kysely, Selectable } from 'kysely';
import type { AuthSchema, AuthDb } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import type { AuthTables } from './tables.js';
import { normaliseEmail, normalisePhone, normaliseUsername } from './username.js';

export type UserRow = Selectable<AuthTables['users']>;

/** the public face of a user (never a hash, a secret or an address) */
export interface UserView {
  id: string;
  username: string;
  role: string;
  state: string;
  mfaMethod: string | null;
  createdAt: string;
  lastLoginAt: string | null;
  lastSeenAt: string | null;
  pendingRole: string | null;
  /** 'en' | 'fr', or null: the browser's language */
  language: string | null;
}

/** what the directory shows in place of an erased person's name */
export const ERASED_NAME = 'erased user';

/**
 * A person's own field-key scope: their e-mail and phone are encrypted under the data key
 * `field:user.<id>`, so destroying that one key erases them (src/privacy/erase.ts). Rows written
 * before per-person keys existed are under the shared `field:users` key until `rekey` moves them.
 */
export const personalScope = (userId: string): string => `user.${userId.toLowerCase()}`;
export const personalKeyName = (userId: string): string => `field:${personalScope(userId)}`;

export function userView(r: UserRow): UserView {
  return {
    id: r.id,
    username: r.state === 'erased' ? ERASED_NAME : r.username,
    role: r.role,
    state: r.state,
    mfaMethod: r.mfa_method,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    lastLoginAt: isoOrNull(r.last_login_at),
    lastSeenAt: isoOrNull(r.last_seen_at),
    pendingRole: r.pending_role ?? null,
    language: r.language ?? null,
  };
}

/**
 * The user directory: rows, lookups, and the encrypted contact fields. E-mail and phone are
 * encrypted with the FieldCipher (context binds the row and column) and found through a blind
 * index (invariant 1).
 */
export class UserDirectory {
  constructor(
    private readonly db: AuthDb,
    private readonly fields: FieldCipher,
  ) {}

  async byId(id: string, trx: Kysely<AuthSchema> = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async byUsername(raw: string): Promise<UserRow | undefined> {
    let key: string;
    try {
      key = normaliseUsername(raw).key;
    } catch {
      return undefined;
    }
    return this.db.selectFrom('users').selectAll().where('username_key', '=', key).executeTakeFirst();
  }

  async byEmail(raw: string): Promise<UserRow[]> {
    let email: string;
    try {
      email = normaliseEmail(raw);
    } catch {
      return [];
    }
    const idx = await this.fields.blindIndex('users.email', email.toLowerCase());
    return this.db.selectFrom('users').selectAll().where('email_index', '=', idx).execute();
  }

  async encryptEmail(userId: string, raw: string): Promise<{ email_enc: string; email_index: string }> {
    const email = normaliseEmail(raw);
    return {
      email_enc: await this.fields.encrypt(personalScope(userId), email, `users.email:${userId}`),
      email_index: await this.fields.blindIndex('users.email', email.toLowerCase()),
    };
  }

  async encryptPhone(userId: string, raw: string): Promise<{ phone_enc: string; phone_index: string }> {
    const phone = normalisePhone(raw);
    return {
      phone_enc: await this.fields.encrypt(personalScope(userId), phone, `users.phone:${userId}`),
      phone_index: await this.fields.blindIndex('users.phone', phone),
    };
  }

  /**
   * Moves one person's e-mail and phone under their own field key (a no-op when they already are):
   * re-encrypts, compare-and-set on the old ciphertexts. Returns whether the row changed.
   */
  async rekey(r: UserRow): Promise<boolean> {
    if (r.state === 'erased') return false;
    const keyOf = (c: string | null) => (c ? c.split('.')[1] : undefined);
    const email = await this.email(r);
    const emailEnc = await this.fields.encrypt(personalScope(r.id), email, `users.email:${r.id}`);
    const phone = await this.phone(r);
    const phoneEnc =
      phone === undefined ? null : await this.fields.encrypt(personalScope(r.id), phone, `users.phone:${r.id}`);
    if (keyOf(emailEnc) === keyOf(r.email_enc) && keyOf(phoneEnc) === keyOf(r.phone_enc)) return false;
    let q = this.db
      .updateTable('users')
      .set({ email_enc: emailEnc, phone_enc: phoneEnc })
      .where('id', '=', r.id)
      .where('email_enc', '=', r.email_enc);
    q = r.phone_enc === null ? q.where('phone_enc', 'is', null) : q.where('phone_enc', '=', r.phone_enc);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  email(r: UserRow): Promise<string> {
    return this.fields.decrypt(r.email_enc, `users.email:${r.id}`);
  }

  phone(r: UserRow): Promise<string | undefined> {
    return r.phone_enc ? this.fields.decrypt(r.phone_enc, `users.phone:${r.id}`) : Promise.resolve(undefined);
  }

  async list(): Promise<UserRow[]> {
    return this.db.selectFrom('users').selectAll().orderBy('username_key').execute();
  }

  /** the user's language ('en', 'fr'), or null to follow the browser (docs/i18n.md) */
  async setLanguage(id: string, language: string | null): Promise<void> {
    await this.db.updateTable('users').set({ language }).where('id', '=', id).execute();
  }
}
