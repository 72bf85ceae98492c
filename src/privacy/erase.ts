import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { PrivacySchema } from '../db/index.js';
import type { UserRow } from '../auth/index.js';
import { ERASED_NAME, personalKeyName } from '../auth/index.js';
import type { AuditSource } from '../audit/index.js';
import { AppError, errors } from '../shared/errors.js';
import type { PrivacyDeps } from './types.js';

/** What happens to the workspaces a person is the only owner of (they would be left without one). */
export type Handover = { transferTo: string } | { trash: true } | undefined;

export interface ErasurePlan {
  userId: string;
  state: string;
  /** workspaces the person is the only owner of: they need a new owner, or go to the trash */
  soleOwned: string[];
  memberships: number;
  /** false: the account never signed in and holds no membership, so it can also be deleted outright */
  signedIn: boolean;
  deletable: boolean;
}

export interface ErasureResult {
  userId: string;
  sessionsEnded: number;
  tokensRevoked: number;
  workspacesTransferred: string[];
  workspacesTrashed: string[];
  documentsTrashed: number;
  /** the person's field key was destroyed (false: their fields predate per-person keys; the rows were overwritten) */
  keyDestroyed: boolean;
  /** the database files no longer hold the old bytes (false: a reader kept the log busy; the next erasure or close finishes it) */
  scrubbed: boolean;
}

const erasureErrors = {
  needsOwner: (ids: string[]) =>
    new AppError(
      'ERASE_NEEDS_OWNER',
      `the person is the only owner of ${ids.length} workspace(s): name a new owner or send them to the trash`,
      {
        httpStatus: 409,
        exitCode: 2,
        hint: 'coffre user erase USER --transfer-to OTHER, or --trash',
        details: { workspaces: ids },
      },
    ),
  erased: () => new AppError('USER_ERASED', 'this user was already erased', { httpStatus: 409, exitCode: 2 }),
  self: () =>
    new AppError('SELF_ERASE', 'you cannot erase or delete your own account here; ask another admin', {
      httpStatus: 409,
      exitCode: 2,
    }),
  lastAdmin: () =>
    new AppError('LAST_ADMIN', 'this is the last active admin: make someone else admin first', {
      httpStatus: 409,
      exitCode: 2,
    }),
  badOwner: (why: string) =>
    new AppError('BAD_NEW_OWNER', `the new owner cannot take the workspaces: ${why}`, { httpStatus: 409, exitCode: 2 }),
  notDeletable: () =>
    new AppError(
      'USER_NOT_DELETABLE',
      'only an account that never signed in and holds no membership can be deleted outright; erase this one instead',
      { httpStatus: 409, exitCode: 2, hint: 'coffre user erase USER' },
    ),
  confirm: () =>
    new AppError('CONFIRMATION_REQUIRED', 'type the user name (or, for an erased user, the id) to confirm', {
      httpStatus: 400,
      exitCode: 2,
    }),
};

const idList = (ids: string[]) => (ids.length > 3 ? `${ids.slice(0, 3).join(',')},+${ids.length - 3}` : ids.join(','));
const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest('base64url');

/** names in free text (alert messages) are replaced whole, never inside another word */
const nameIn = (name: string) =>
  new RegExp(`(?<![\\p{L}\\p{N}._@-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}._@-])`, 'gu');

/**
 * Erasure (GDPR art. 17) and deletion of a person's account. Erasure keeps the row (its id is in
 * the audit trail, which must keep verifying) and removes everything that names or reaches the
 * person: e-mail and phone are crypto-shredded (their field key `field:user.<id>` destroyed, the
 * ciphertexts overwritten), the user name, blind indexes and secrets are overwritten, sessions,
 * tokens, links, codes and sign-in traces deleted, and the database files scrubbed (SQLite
 * `secure_delete` plus a truncated write-ahead log). Deletion removes the row itself, for
 * accounts that never signed in and hold no membership.
 */
export class Erasure {
  constructor(private readonly d: PrivacyDeps) {}

  private async user(userId: string): Promise<UserRow> {
    const u = await this.d.users.byId(userId);
    if (!u) throw errors.notFound('user');
    return u;
  }

  private async soleOwned(db: Kysely<PrivacySchema>, userId: string): Promise<string[]> {
    const owned = await db
      .selectFrom('workspace_members')
      .select('workspace_id')
      .where('user_id', '=', userId)
      .where('role', '=', 'owner')
      .execute();
    const out: string[] = [];
    for (const w of owned) {
      const n = await db
        .selectFrom('workspace_members')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('workspace_id', '=', w.workspace_id)
        .where('role', '=', 'owner')
        .executeTakeFirstOrThrow();
      if (Number(n.n) === 1) out.push(w.workspace_id);
    }
    return out.sort();
  }

  async plan(userId: string): Promise<ErasurePlan> {
    const u = await this.user(userId);
    const m = await this.d.db
      .selectFrom('workspace_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    const memberships = Number(m.n);
    const signedIn = u.last_login_at !== null || u.password_hash !== null;
    return {
      userId,
      state: u.state,
      soleOwned: await this.soleOwned(this.d.db, userId),
      memberships,
      signedIn,
      deletable: !signedIn && memberships === 0 && u.state !== 'erased',
    };
  }

  /** `confirm`, when given (the API requires it), must be the user name or the id */
  static confirmed(u: Pick<UserRow, 'id' | 'username' | 'username_key'>, confirm: string | undefined): boolean {
    if (confirm === undefined) return false;
    const c = confirm.normalize('NFKC').trim().toLowerCase();
    return c === u.id.toLowerCase() || c === u.username_key;
  }

  private async guard(u: UserRow, actor: string): Promise<void> {
    if (u.state === 'erased') throw erasureErrors.erased();
    if (actor === `user:${u.id}`) throw erasureErrors.self();
    if (u.role === 'admin' && u.state === 'active') {
      const n = await this.d.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', 'admin')
        .where('state', '=', 'active')
        .executeTakeFirstOrThrow();
      if (Number(n.n) <= 1) throw erasureErrors.lastAdmin();
    }
  }

  async erase(
    userId: string,
    handover: Handover,
    actor: string,
    source: AuditSource,
    confirm?: string,
  ): Promise<ErasureResult> {
    const u = await this.user(userId);
    if (confirm !== undefined && !Erasure.confirmed(u, confirm)) throw erasureErrors.confirm();
    await this.guard(u, actor);
    let newOwner: UserRow | undefined;
    if (handover && 'transferTo' in handover) {
      newOwner = await this.d.users.byId(handover.transferTo);
      if (!newOwner) throw erasureErrors.badOwner('no such user');
      if (newOwner.id === u.id) throw erasureErrors.badOwner('it is the person being erased');
      if (newOwner.state !== 'active') throw erasureErrors.badOwner(`their account is ${newOwner.state}`);
      if (newOwner.role !== 'member' && newOwner.role !== 'admin')
        throw erasureErrors.badOwner(`the role ${newOwner.role} cannot hold workspaces`);
    }
    const now = this.d.clock.nowMs();
    const accountKey = `acct:${sha256(u.username_key)}`;
    const r = await this.d.db.transaction().execute(async (trx) => {
      const sole = await this.soleOwned(trx, u.id);
      if (sole.length && !handover) throw erasureErrors.needsOwner(sole);
      const transferred: string[] = [];
      const trashed: string[] = [];
      let documentsTrashed = 0;
      for (const ws of sole) {
        if (newOwner) {
          const has = await trx
            .selectFrom('workspace_members')
            .select('role')
            .where('workspace_id', '=', ws)
            .where('user_id', '=', newOwner.id)
            .executeTakeFirst();
          if (has)
            await trx
              .updateTable('workspace_members')
              .set({ role: 'owner' })
              .where('workspace_id', '=', ws)
              .where('user_id', '=', newOwner.id)
              .execute();
          else
            await trx
              .insertInto('workspace_members')
              .values({ workspace_id: ws, user_id: newOwner.id, role: 'owner', added_at: now, added_by: actor })
              .execute();
          await this.d.audit.record(trx, {
            action: 'workspace.owner.transfer',
            actor,
            outcome: 'success',
            reason: 'ERASURE',
            targets: { workspace: ws, user: newOwner.id, from: u.id },
            source,
          });
          transferred.push(ws);
        } else {
          const res = await trx
            .updateTable('vault_documents')
            .set({ trashed_at: now, trashed_by: actor, updated_at: now })
            .where('workspace_id', '=', ws)
            .where('trashed_at', 'is', null)
            .executeTakeFirst();
          const n = Number(res.numUpdatedRows);
          await trx.updateTable('workspaces').set({ state: 'archived' }).where('id', '=', ws).execute();
          await this.d.audit.record(trx, {
            action: 'workspace.trash',
            actor,
            outcome: 'success',
            reason: 'ERASURE',
            targets: { workspace: ws, from: u.id, documents: String(n) },
            source,
          });
          documentsTrashed += n;
          trashed.push(ws);
        }
      }
      await trx.deleteFrom('workspace_members').where('user_id', '=', u.id).execute();
      const sessions = await trx
        .updateTable('sessions')
        .set({ ended_at: now, end_reason: 'user-erased' })
        .where('user_id', '=', u.id)
        .where('ended_at', 'is', null)
        .executeTakeFirst();
      const tokens = await trx
        .updateTable('api_tokens')
        .set({ revoked_at: now, revoked_by: actor })
        .where('user_id', '=', u.id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      // then every trace that reaches the person: addresses, user agents, token names, codes, links
      for (const t of [
        'sessions',
        'api_tokens',
        'one_time_links',
        'recovery_codes',
        'login_challenges',
        'auth_known_clients',
        'auth_user_notices',
        'account_recoveries',
      ] as const) {
        await trx.deleteFrom(t).where('user_id', '=', u.id).execute();
      }
      await trx.deleteFrom('auth_proofs').where('account_key', '=', accountKey).execute();
      await trx
        .deleteFrom('login_throttle')
        .where((eb) =>
          eb.or([
            eb('key', '=', accountKey),
            eb('key', 'like', `pair:${accountKey.slice(5)}:%`),
            eb('key', 'like', `%${u.id}%`),
          ]),
        )
        .execute();
      await this.scrubAlerts(trx, u);
      await trx
        .updateTable('users')
        .set({
          username: ERASED_NAME,
          username_key: `erased:${u.id}`,
          username_skeleton: null,
          email_enc: 'erased',
          email_index: `erased:${u.id}`,
          phone_enc: null,
          phone_index: null,
          password_hash: null,
          password_changed_at: null,
          mfa_method: null,
          totp_secret_enc: null,
          totp_pending_enc: null,
          totp_confirmed: 0,
          totp_last_step: null,
          pending_role: null,
          language: null,
          state: 'erased',
          disabled_at: now,
        })
        .where('id', '=', u.id)
        .execute();
      const ended = Number(sessions.numUpdatedRows);
      const revoked = Number(tokens.numUpdatedRows);
      await this.d.audit.record(trx, {
        action: 'user.erase',
        actor,
        outcome: 'success',
        targets: {
          user: u.id,
          sessionsEnded: String(ended),
          tokensRevoked: String(revoked),
          ...(transferred.length ? { transferredTo: newOwner!.id, workspaces: idList(transferred) } : {}),
          ...(trashed.length ? { trashed: idList(trashed) } : {}),
        },
        source,
      });
      return { ended, revoked, transferred, trashed, documentsTrashed };
    });
    // after the commit: the rows no longer point at the key; destroying it scrubs the files too
    const shred = await this.d.shred(personalKeyName(u.id));
    this.d.log.info(
      { event: 'privacy.erased', user: u.id, keyDestroyed: shred.destroyed, scrubbed: shred.scrubbed },
      'personal data erased',
    );
    return {
      userId: u.id,
      sessionsEnded: r.ended,
      tokensRevoked: r.revoked,
      workspacesTransferred: r.transferred,
      workspacesTrashed: r.trashed,
      documentsTrashed: r.documentsTrashed,
      keyDestroyed: shred.destroyed,
      scrubbed: shred.scrubbed,
    };
  }

  /** alert texts that name the person: the name becomes "erased user" (alerts and their queued notices) */
  private async scrubAlerts(trx: Kysely<PrivacySchema>, u: UserRow): Promise<void> {
    const rows = await trx
      .selectFrom('alerts')
      .select(['id', 'message'])
      .where('targets', 'like', `%${u.id}%`)
      .execute();
    const re = nameIn(u.username);
    for (const a of rows) {
      const message = a.message.replace(re, ERASED_NAME);
      if (message !== a.message) await trx.updateTable('alerts').set({ message }).where('id', '=', a.id).execute();
      const queued = await trx
        .selectFrom('alert_outbox')
        .select(['id', 'payload'])
        .where('alert_id', '=', a.id)
        .execute();
      for (const q of queued) {
        const payload = q.payload.replace(re, ERASED_NAME);
        if (payload !== q.payload)
          await trx.updateTable('alert_outbox').set({ payload }).where('id', '=', q.id).execute();
      }
    }
  }

  /** Deletes an account outright: only one that never signed in and holds no membership. */
  async remove(
    userId: string,
    actor: string,
    source: AuditSource,
    confirm?: string,
  ): Promise<{ userId: string; scrubbed: boolean }> {
    const u = await this.user(userId);
    if (confirm !== undefined && !Erasure.confirmed(u, confirm)) throw erasureErrors.confirm();
    await this.guard(u, actor);
    await this.d.db.transaction().execute(async (trx) => {
      const m = await trx
        .selectFrom('workspace_members')
        .select('workspace_id')
        .where('user_id', '=', u.id)
        .limit(1)
        .execute();
      const fresh = await trx
        .selectFrom('users')
        .select(['last_login_at', 'password_hash'])
        .where('id', '=', u.id)
        .executeTakeFirst();
      if (!fresh || m.length || fresh.last_login_at !== null || fresh.password_hash !== null)
        throw erasureErrors.notDeletable();
      await trx
        .deleteFrom('login_throttle')
        .where((eb) => eb.or([eb('key', '=', `acct:${sha256(u.username_key)}`), eb('key', 'like', `%${u.id}%`)]))
        .execute();
      await this.scrubAlerts(trx, u);
      // sessions, tokens, links, codes, challenges, known clients, notices, recoveries: ON DELETE CASCADE
      await trx.deleteFrom('users').where('id', '=', u.id).execute();
      await this.d.audit.record(trx, {
        action: 'user.delete',
        actor,
        outcome: 'success',
        targets: { user: u.id },
        source,
      });
    });
    const shred = await this.d.shred(personalKeyName(u.id));
    return { userId: u.id, scrubbed: shred.scrubbed };
  }
}
