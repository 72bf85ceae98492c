import type { Kysely } from 'kysely';
import type { AccessSchema, AccessDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { FieldCipher } from '../keys/types.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Actor } from '../http/index.js';
import type { Policy } from './policy.js';
import { AppError, errors } from '../shared/errors.js';
import { isWorkspaceRole, type WorkspaceAction, type WorkspaceRole } from './permissions.js';
import crypto from 'node:crypto';
import { sql } from 'kysely';
import { hasInvisibleFormat } from '../shared/text.js';

export interface WorkspaceView {
  id: string;
  name: string;
  quotaBytes: number | null;
  createdAt: string;
  state: string;
  /** the caller's role in it */
  role: WorkspaceRole;
}

export interface WorkspaceLimits {
  /** vault.defaultQuotaBytes: what a workspace gets when nobody set its quota (0 = unlimited) */
  defaultQuotaBytes: number;
  /** vault.maxWorkspacesPerUser (0 = no limit) */
  maxCreatedPerUser: number;
}

/** what the member picker needs from the user directory (the identity module provides it) */
export interface PickerDirectory {
  /** the id of the user whose user name or e-mail address is exactly `text`, if any */
  findExact(text: string): Promise<string | undefined>;
  /** takes one look-up from this person's budget; false when it is spent */
  allowLookup(userId: string): Promise<boolean>;
}

/** a person's membership, for admins: the workspace's name only when the caller is a member too */
export interface MembershipView {
  workspaceId: string;
  role: string;
  addedAt: string;
  name: string | null;
}

export interface MemberView {
  userId: string;
  username: string;
  role: string;
  addedAt: string;
}

/**
 * Workspaces and their members (need-to-know, Z2). The name is confidential (encrypted with the
 * FieldCipher, context `workspaces.name:<id>`). The creator becomes its owner; owners manage
 * members; a workspace always keeps at least one owner. The vault builds folders and documents on
 * these tables and checks access through the Policy.
 */
export class Workspaces {
  constructor(
    private readonly o: {
      db: AccessDb;
      clock: Clock;
      fields: FieldCipher;
      audit: Auditor;
      policy: Policy;
      limits?: WorkspaceLimits | undefined;
      directory?: PickerDirectory | undefined;
    },
  ) {}

  private get limits(): WorkspaceLimits {
    return this.o.limits ?? { defaultQuotaBytes: 0, maxCreatedPerUser: 0 };
  }

  /** need-to-know check whose refusals are audited (`access.denied`, NOT_MEMBER or ROLE_TOO_LOW) */
  private async require(
    actor: Actor,
    id: string,
    action: WorkspaceAction,
    source: AuditSource | undefined,
  ): Promise<WorkspaceRole> {
    try {
      return await this.o.policy.requireWorkspace(actor, id, action);
    } catch (e) {
      if (e instanceof AppError && (e.httpStatus === 403 || e.httpStatus === 404)) {
        await this.o.audit.recordNow({
          action: 'access.denied',
          actor: actor.id,
          outcome: 'denied',
          reason: e.httpStatus === 404 ? 'NOT_MEMBER' : 'ROLE_TOO_LOW',
          targets: { workspace: id.slice(0, 128), action },
          ...(source ? { source } : {}),
        });
      }
      throw e;
    }
  }

  private name(id: string, enc: string): Promise<string> {
    return this.o.fields.decrypt(enc, `workspaces.name:${id}`);
  }

  /**
   * A workspace's name, for code that has already checked the caller is a member (the access
   * review shows names only to reviewers who are members).
   */
  async nameOf(id: string): Promise<string> {
    const r = await this.o.db
      .selectFrom('workspaces')
      .select('name_enc')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return this.name(id, r.name_enc);
  }

  static checkName(name: string): string {
    const n = name.normalize('NFC').trim();
    if (n.length < 1 || n.length > 200 || /[\u0000-\u001f\u007f]/.test(n) || hasInvisibleFormat(n))
      throw errors.usage(
        'workspace name: 1 to 200 characters, no control or invisible format characters (zero-width, direction marks)',
      );
    return n;
  }

  async create(
    actor: Actor,
    o: { name: string; quotaBytes?: number | null | undefined },
    source: AuditSource,
    ownerId = actor.userId,
  ): Promise<{ id: string }> {
    const name = Workspaces.checkName(o.name);
    if (!ownerId)
      throw new AppError('OWNER_REQUIRED', 'a workspace needs an owner: pass --owner USER', {
        httpStatus: 400,
        exitCode: 2,
      });
    if (
      o.quotaBytes !== undefined &&
      o.quotaBytes !== null &&
      (!Number.isSafeInteger(o.quotaBytes) || o.quotaBytes < 0)
    )
      throw errors.usage('quotaBytes must be a non-negative integer');
    await this.checkQuotaRequest(actor, o.quotaBytes, source);
    const id = crypto.randomUUID();
    const nameEnc = await this.o.fields.encrypt('workspaces', name, `workspaces.name:${id}`);
    const now = this.o.clock.nowMs();
    await this.o.db
      .transaction()
      .execute(async (trx) => {
        await this.checkCreatedCount(trx, actor);
        await trx
          .insertInto('workspaces')
          .values({
            id,
            name_enc: nameEnc,
            quota_bytes: o.quotaBytes ?? null,
            created_at: now,
            created_by: actor.id,
            state: 'active',
          })
          .execute();
        await trx
          .insertInto('workspace_members')
          .values({ workspace_id: id, user_id: ownerId, role: 'owner', added_at: now, added_by: actor.id })
          .execute();
        await this.o.audit.record(trx, {
          action: 'workspace.create',
          actor: actor.id,
          outcome: 'success',
          targets: { workspace: id, owner: ownerId },
          source,
        });
      })
      .catch(async (e: unknown) => {
        // the refusal is recorded once the transaction that counted is over
        if (e instanceof AppError && e.code === 'WORKSPACE_LIMIT')
          await this.o.audit.recordNow({
            action: 'access.denied',
            actor: actor.id,
            outcome: 'denied',
            reason: 'WORKSPACE_LIMIT',
            targets: { action: 'workspace:create', limit: String(this.limits.maxCreatedPerUser) },
            source,
          });
        throw e;
      });
    return { id };
  }

  /** admins (settings:manage) and the local CLI may set any quota */
  private mayRaiseQuota(actor: Actor): boolean {
    return actor.kind === 'local' || this.o.policy.hasPermission(actor, 'settings:manage');
  }

  /**
   * Z7: only admins set or raise quotas. Anyone else gets the default (vault.defaultQuotaBytes),
   * or may ask for a smaller one; 0 (unlimited) or more than the default is refused.
   */
  private async checkQuotaRequest(actor: Actor, quota: number | null | undefined, source: AuditSource): Promise<void> {
    if (quota === undefined || quota === null || this.mayRaiseQuota(actor)) return;
    const def = this.limits.defaultQuotaBytes;
    if (quota > 0 && (def === 0 || quota <= def)) return;
    await this.o.audit.recordNow({
      action: 'access.denied',
      actor: actor.id,
      outcome: 'denied',
      reason: 'QUOTA_ADMIN_ONLY',
      targets: { action: 'workspace:create' },
      source,
    });
    throw new AppError(
      'QUOTA_ADMIN_ONLY',
      `only an administrator may set a quota above the default (${def === 0 ? 'unlimited' : `${def} bytes`})`,
      { httpStatus: 403, exitCode: 2, hint: 'leave the quota out to get the default, or ask an administrator' },
    );
  }

  /**
   * Sets the quota of an existing workspace (admins and the local CLI only: `settings:manage`).
   * The admin need not be a member: the answer carries the id and the quota, never the name or
   * content. `null` returns the workspace to the default (`vault.defaultQuotaBytes`), 0 is unlimited.
   * Audited (`workspace.quota`, with the old and new values); a refusal is recorded as
   * `access.denied` / `QUOTA_ADMIN_ONLY`.
   */
  async setQuota(
    actor: Actor,
    id: string,
    quotaBytes: number | null,
    source: AuditSource,
  ): Promise<{ id: string; quotaBytes: number | null }> {
    if (quotaBytes !== null && (!Number.isSafeInteger(quotaBytes) || quotaBytes < 0))
      throw errors.usage('quotaBytes must be a non-negative integer or null');
    if (!this.mayRaiseQuota(actor)) {
      await this.o.audit.recordNow({
        action: 'access.denied',
        actor: actor.id,
        outcome: 'denied',
        reason: 'QUOTA_ADMIN_ONLY',
        targets: { action: 'workspace:quota', workspace: id },
        source,
      });
      throw new AppError('QUOTA_ADMIN_ONLY', 'only an administrator may change the quota of a workspace', {
        httpStatus: 403,
      });
    }
    await this.o.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('workspaces')
        .select(['quota_bytes', 'state'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || row.state !== 'active') throw errors.notFound('workspace');
      await trx.updateTable('workspaces').set({ quota_bytes: quotaBytes }).where('id', '=', id).execute();
      const was = row.quota_bytes === null ? 'default' : String(row.quota_bytes);
      await this.o.audit.record(trx, {
        action: 'workspace.quota',
        actor: actor.id,
        outcome: 'success',
        targets: { workspace: id, from: was, to: quotaBytes === null ? 'default' : String(quotaBytes) },
        source,
      });
    });
    return { id, quotaBytes };
  }

  /** Z7: at most `maxCreatedPerUser` workspaces created by one person (their sessions and tokens together) */
  private async checkCreatedCount(trx: Kysely<AccessSchema>, actor: Actor): Promise<void> {
    const max = this.limits.maxCreatedPerUser;
    if (max === 0 || !actor.userId || actor.kind === 'local') return;
    const uid = actor.userId;
    const r = await trx
      .selectFrom('workspaces')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where((eb) =>
        eb.or([
          eb('created_by', '=', `user:${uid}`),
          eb(
            'created_by',
            'in',
            eb
              .selectFrom('api_tokens')
              .select(sql<string>`'token:' || id`.as('t'))
              .where('user_id', '=', uid),
          ),
        ]),
      )
      .executeTakeFirst();
    if (Number(r?.n ?? 0) < max) return;
    throw new AppError('WORKSPACE_LIMIT', `you have created ${max} workspaces, the most one person may create`, {
      httpStatus: 409,
      exitCode: 2,
      hint: 'ask an administrator (vault.maxWorkspacesPerUser)',
    });
  }

  /** workspaces the actor is a member of (and only those) */
  async listFor(actor: Actor): Promise<WorkspaceView[]> {
    if (!actor.userId) return [];
    const rows = await this.o.db
      .selectFrom('workspaces')
      .innerJoin('workspace_members', 'workspace_members.workspace_id', 'workspaces.id')
      .select([
        'workspaces.id',
        'workspaces.name_enc',
        'workspaces.quota_bytes',
        'workspaces.created_at',
        'workspaces.state',
        'workspace_members.role',
      ])
      .where('workspace_members.user_id', '=', actor.userId)
      .where('workspaces.state', '=', 'active')
      .orderBy('workspaces.created_at')
      .execute();
    return Promise.all(
      rows.map(async (r) => ({
        id: r.id,
        name: await this.name(r.id, r.name_enc),
        quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes),
        createdAt: new Date(Number(r.created_at)).toISOString(),
        state: r.state,
        role: r.role as WorkspaceRole,
      })),
    );
  }

  /**
   * A person's memberships as an admin may see them (the same rule as the access review): every
   * workspace id and role, the name only of the workspaces the caller is a member of himself
   * (need-to-know); audited first (`membership.list`, ids only).
   */
  async membershipsOf(actor: Actor, userId: string, source: AuditSource): Promise<MembershipView[]> {
    await this.o.audit.recordNow({
      action: 'membership.list',
      actor: actor.id,
      outcome: 'success',
      targets: { user: userId.slice(0, 128) },
      source,
    });
    const rows = await this.o.db
      .selectFrom('workspace_members')
      .innerJoin('workspaces', 'workspaces.id', 'workspace_members.workspace_id')
      .select(['workspace_members.workspace_id', 'workspace_members.role', 'workspace_members.added_at'])
      .where('workspace_members.user_id', '=', userId)
      .where('workspaces.state', '=', 'active')
      .orderBy('workspace_members.added_at')
      .execute();
    const mine = new Set(
      actor.userId
        ? (
            await this.o.db
              .selectFrom('workspace_members')
              .select('workspace_id')
              .where('user_id', '=', actor.userId)
              .execute()
          ).map((r) => r.workspace_id)
        : [],
    );
    return Promise.all(
      rows.map(async (r) => ({
        workspaceId: r.workspace_id,
        role: r.role,
        addedAt: new Date(Number(r.added_at)).toISOString(),
        name: mine.has(r.workspace_id) ? await this.nameOf(r.workspace_id) : null,
      })),
    );
  }

  /** Which of these ids are workspaces (ids only, nothing about them: the incident register checks what it is told is affected). */
  async existing(ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    return new Set(
      (
        await this.o.db
          .selectFrom('workspaces')
          .select('id')
          .where('id', 'in', [...ids])
          .execute()
      ).map((r) => r.id),
    );
  }

  /** The ids of the members of these workspaces (the incident register tells them of an incident that affects their workspace). */
  async memberIds(workspaceIds: readonly string[]): Promise<Set<string>> {
    if (!workspaceIds.length) return new Set();
    return new Set(
      (
        await this.o.db
          .selectFrom('workspace_members')
          .select('user_id')
          .where('workspace_id', 'in', [...workspaceIds])
          .execute()
      ).map((r) => r.user_id),
    );
  }

  async get(actor: Actor, id: string, source?: AuditSource): Promise<WorkspaceView> {
    const role = await this.require(actor, id, 'workspace:read', source);
    const r = await this.o.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return {
      id: r.id,
      name: await this.name(r.id, r.name_enc),
      quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes),
      createdAt: new Date(Number(r.created_at)).toISOString(),
      state: r.state,
      role,
    };
  }

  async members(actor: Actor, id: string, source?: AuditSource): Promise<MemberView[]> {
    await this.require(actor, id, 'workspace:read', source);
    const rows = await this.o.db
      .selectFrom('workspace_members')
      .innerJoin('users', 'users.id', 'workspace_members.user_id')
      .select(['workspace_members.user_id', 'users.username', 'workspace_members.role', 'workspace_members.added_at'])
      .where('workspace_members.workspace_id', '=', id)
      .orderBy('users.username_key')
      .execute();
    return rows.map((r) => ({
      userId: r.user_id,
      username: r.username,
      role: r.role,
      addedAt: new Date(Number(r.added_at)).toISOString(),
    }));
  }

  /**
   * The owner's member picker (Z7): finds one person by their exact user name (compared like
   * sign-in: NFKC, case-insensitive) or exact e-mail address, never by prefix, so nobody can walk
   * the directory. Only id and user name of an active account, never an address or a role.
   * Need-to-know: only owners of this workspace may look (others get the workspace's 404). Each
   * person is limited to `directory.lookupsPerHour` lookups (then 429, audited); every lookup is
   * audited (`user.lookup`, the id found or none: the typed text is never recorded).
   */
  async candidates(
    actor: Actor,
    id: string,
    q: string,
    source: AuditSource,
  ): Promise<{ userId: string; username: string; member: boolean }[]> {
    await this.require(actor, id, 'workspace:members', source);
    const text = q.normalize('NFKC').trim();
    if (text.length < 2 || text.length > 254)
      throw errors.usage('type the exact user name or e-mail address of the person to add');
    const dir = this.o.directory;
    if (!dir) return [];
    if (!(await dir.allowLookup(actor.userId ?? actor.id))) {
      await this.o.audit.recordNow({
        action: 'user.lookup',
        actor: actor.id,
        outcome: 'denied',
        reason: 'THROTTLED',
        targets: { workspace: id },
        source,
      });
      throw new AppError('RATE_LIMITED', 'too many look-ups; try again later', {
        httpStatus: 429,
        exitCode: 1,
        details: { retryAfterSeconds: 600 },
      });
    }
    const userId = await dir.findExact(text);
    const row = userId
      ? await this.o.db
          .selectFrom('users')
          .leftJoin('workspace_members', (j) =>
            j.onRef('workspace_members.user_id', '=', 'users.id').on('workspace_members.workspace_id', '=', id),
          )
          .select(['users.id', 'users.username', 'workspace_members.role'])
          .where('users.id', '=', userId)
          .where('users.state', '=', 'active')
          .executeTakeFirst()
      : undefined;
    const found = row ? [{ userId: row.id, username: row.username, member: row.role !== null }] : [];
    await this.o.audit.recordNow({
      action: 'user.lookup',
      actor: actor.id,
      outcome: 'success',
      reason: found.length ? 'FOUND' : 'NOT_FOUND',
      targets: { workspace: id, ...(row ? { users: row.id } : {}) },
      source,
    });
    return found;
  }

  private async ownerCount(trx: Kysely<AccessSchema>, id: string): Promise<number> {
    const r = await trx
      .selectFrom('workspace_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('workspace_id', '=', id)
      .where('role', '=', 'owner')
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** adds a member or changes their role (owners only) */
  async setMember(actor: Actor, id: string, userId: string, role: string, source: AuditSource): Promise<void> {
    await this.require(actor, id, 'workspace:members', source);
    if (!isWorkspaceRole(role)) throw errors.usage(`unknown workspace role "${role}"`, 'one of owner, editor, viewer');
    const user = await this.o.db
      .selectFrom('users')
      .select(['id', 'state'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!user || user.state === 'disabled') throw errors.notFound('user');
    // Z6: whoever completes a pending invitation becomes that account, so it holds no membership until then
    if (user.state !== 'active')
      throw new AppError(
        'USER_NOT_ENROLLED',
        'this person has not enrolled yet; add them once they have chosen their password',
        { httpStatus: 409, exitCode: 2 },
      );
    await this.o.db.transaction().execute(async (trx) => {
      const now = this.o.clock.nowMs();
      const before = await trx
        .selectFrom('workspace_members')
        .select('role')
        .where('workspace_id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (before) {
        await trx
          .updateTable('workspace_members')
          .set({ role })
          .where('workspace_id', '=', id)
          .where('user_id', '=', userId)
          .execute();
        if ((await this.ownerCount(trx, id)) === 0)
          throw new AppError('LAST_OWNER', 'a workspace must keep at least one owner', { httpStatus: 409 });
      } else {
        await trx
          .insertInto('workspace_members')
          .values({ workspace_id: id, user_id: userId, role, added_at: now, added_by: actor.id })
          .execute();
      }
      await this.o.audit.record(trx, {
        action: before ? 'workspace.member.role' : 'workspace.member.add',
        actor: actor.id,
        outcome: 'success',
        targets: { workspace: id, user: userId, role, ...(before ? { previous: before.role } : {}) },
        source,
      });
    });
  }

  async removeMember(
    actor: Actor,
    id: string,
    userId: string,
    source: AuditSource,
    via = 'workspace.member.remove',
  ): Promise<void> {
    // an access-review revocation was authorised by the review (owner checked there)
    if (via === 'workspace.member.remove') await this.require(actor, id, 'workspace:members', source);
    await this.o.db.transaction().execute(async (trx) => {
      const r = await trx
        .deleteFrom('workspace_members')
        .where('workspace_id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) throw errors.notFound('member');
      if ((await this.ownerCount(trx, id)) === 0)
        throw new AppError('LAST_OWNER', 'a workspace must keep at least one owner', { httpStatus: 409 });
      await this.o.audit.record(trx, {
        action: via,
        actor: actor.id,
        outcome: 'success',
        targets: { workspace: id, user: userId },
        source,
      });
    });
  }
}
