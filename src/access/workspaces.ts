import type { Kysely } from 'kysely';
import type { Database, Db } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { FieldCipher } from '../keys/types.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Actor } from '../http/permissions.js';
import type { Policy } from './policy.js';
import { AppError, errors } from '../shared/errors.js';
import { isWorkspaceRole, type WorkspaceAction, type WorkspaceRole } from './permissions.js';
import crypto from 'node:crypto';
import { sql } from 'kysely';

export interface WorkspaceView {
  id: string;
  name: string;
  quotaBytes: number | null;
  createdAt: string;
  state: string;
  /** the caller's role in it */
  role: WorkspaceRole;
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
    private readonly o: { db: Db; clock: Clock; fields: FieldCipher; audit: Auditor; policy: Policy },
  ) {}

  /** need-to-know check whose refusals are audited (`access.denied`, NOT_MEMBER or ROLE_TOO_LOW) */
  private async require(actor: Actor, id: string, action: WorkspaceAction, source: AuditSource | undefined): Promise<WorkspaceRole> {
    try {
      return await this.o.policy.requireWorkspace(actor, id, action);
    } catch (e) {
      if (e instanceof AppError && (e.httpStatus === 403 || e.httpStatus === 404)) {
        await this.o.audit.recordNow({ action: 'access.denied', actor: actor.id, outcome: 'denied', reason: e.httpStatus === 404 ? 'NOT_MEMBER' : 'ROLE_TOO_LOW', targets: { workspace: id.slice(0, 128), action }, ...(source ? { source } : {}) });
      }
      throw e;
    }
  }

  private name(id: string, enc: string): Promise<string> {
    return this.o.fields.decrypt(enc, `workspaces.name:${id}`);
  }

  static checkName(name: string): string {
    const n = name.normalize('NFC').trim();
    if (n.length < 1 || n.length > 200 || /[\u0000-\u001f\u007f]/.test(n)) throw errors.usage('workspace name: 1 to 200 characters, no control characters');
    return n;
  }

  async create(actor: Actor, o: { name: string; quotaBytes?: number | null | undefined }, source: AuditSource, ownerId = actor.userId): Promise<{ id: string }> {
    const name = Workspaces.checkName(o.name);
    if (!ownerId) throw new AppError('OWNER_REQUIRED', 'a workspace needs an owner: pass --owner USER', { httpStatus: 400, exitCode: 2 });
    if (o.quotaBytes !== undefined && o.quotaBytes !== null && (!Number.isSafeInteger(o.quotaBytes) || o.quotaBytes < 0)) throw errors.usage('quotaBytes must be a non-negative integer');
    const id = crypto.randomUUID();
    const nameEnc = await this.o.fields.encrypt('workspaces', name, `workspaces.name:${id}`);
    const now = this.o.clock.nowMs();
    await this.o.db.transaction().execute(async (trx) => {
      await trx.insertInto('workspaces').values({ id, name_enc: nameEnc, quota_bytes: o.quotaBytes ?? null, created_at: now, created_by: actor.id, state: 'active' }).execute();
      await trx.insertInto('workspace_members').values({ workspace_id: id, user_id: ownerId, role: 'owner', added_at: now, added_by: actor.id }).execute();
      await this.o.audit.record(trx, { action: 'workspace.create', actor: actor.id, outcome: 'success', targets: { workspace: id, owner: ownerId }, source });
    });
    return { id };
  }

  /** workspaces the actor is a member of (and only those) */
  async listFor(actor: Actor): Promise<WorkspaceView[]> {
    if (!actor.userId) return [];
    const rows = await this.o.db
      .selectFrom('workspaces')
      .innerJoin('workspace_members', 'workspace_members.workspace_id', 'workspaces.id')
      .select(['workspaces.id', 'workspaces.name_enc', 'workspaces.quota_bytes', 'workspaces.created_at', 'workspaces.state', 'workspace_members.role'])
      .where('workspace_members.user_id', '=', actor.userId)
      .where('workspaces.state', '=', 'active')
      .orderBy('workspaces.created_at')
      .execute();
    return Promise.all(rows.map(async (r) => ({ id: r.id, name: await this.name(r.id, r.name_enc), quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes), createdAt: new Date(Number(r.created_at)).toISOString(), state: r.state, role: r.role as WorkspaceRole })));
  }

  async get(actor: Actor, id: string, source?: AuditSource): Promise<WorkspaceView> {
    const role = await this.require(actor, id, 'workspace:read', source);
    const r = await this.o.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return { id: r.id, name: await this.name(r.id, r.name_enc), quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes), createdAt: new Date(Number(r.created_at)).toISOString(), state: r.state, role };
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
    return rows.map((r) => ({ userId: r.user_id, username: r.username, role: r.role, addedAt: new Date(Number(r.added_at)).toISOString() }));
  }

  /**
   * Users an owner may add to this workspace, found by user name: exact match first, then those
   * whose name starts with `q` (at least 2 characters; `%` and `_` are literal). Only id and user
   * name of active or invited accounts, never an address or a role; at most `limit`. Need-to-know:
   * only owners of this workspace may look (others get the workspace's 404), and every lookup that
   * reveals someone is audited (`user.lookup`, ids only: the typed text is not recorded).
   */
  async candidates(actor: Actor, id: string, q: string, source: AuditSource, limit = 8): Promise<{ userId: string; username: string; member: boolean }[]> {
    await this.require(actor, id, 'workspace:members', source);
    const key = q.normalize('NFKC').trim().toLowerCase().normalize('NFKC');
    if (key.length < 2 || key.length > 64) throw errors.usage('type at least 2 characters of the user name');
    const like = `${key.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.o.db
      .selectFrom('users')
      .leftJoin('workspace_members', (j) => j.onRef('workspace_members.user_id', '=', 'users.id').on('workspace_members.workspace_id', '=', id))
      .select(['users.id', 'users.username', 'users.username_key', 'workspace_members.role'])
      .where((eb) => eb.or([eb('users.username_key', '=', key), sql<boolean>`users.username_key like ${like} escape '\\'`]))
      .where('users.state', 'in', ['active', 'invited'])
      .orderBy(sql`case when users.username_key = ${key} then 0 else 1 end`)
      .orderBy('users.username_key')
      .limit(Math.max(1, Math.min(limit, 20)))
      .execute();
    const found = rows.map((r) => ({ userId: r.id, username: r.username, member: r.role !== null }));
    if (found.length) {
      await this.o.audit.recordNow({ action: 'user.lookup', actor: actor.id, outcome: 'success', targets: { workspace: id, users: found.map((f) => f.userId).join(',').slice(0, 1000) }, source });
    }
    return found;
  }

  private async ownerCount(trx: Kysely<Database>, id: string): Promise<number> {
    const r = await trx.selectFrom('workspace_members').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', id).where('role', '=', 'owner').executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** adds a member or changes their role (owners only) */
  async setMember(actor: Actor, id: string, userId: string, role: string, source: AuditSource): Promise<void> {
    await this.require(actor, id, 'workspace:members', source);
    if (!isWorkspaceRole(role)) throw errors.usage(`unknown workspace role "${role}"`, 'one of owner, editor, viewer');
    const user = await this.o.db.selectFrom('users').select(['id', 'state']).where('id', '=', userId).executeTakeFirst();
    if (!user || user.state === 'disabled') throw errors.notFound('user');
    await this.o.db.transaction().execute(async (trx) => {
      const now = this.o.clock.nowMs();
      const before = await trx.selectFrom('workspace_members').select('role').where('workspace_id', '=', id).where('user_id', '=', userId).executeTakeFirst();
      if (before) {
        await trx.updateTable('workspace_members').set({ role }).where('workspace_id', '=', id).where('user_id', '=', userId).execute();
        if ((await this.ownerCount(trx, id)) === 0) throw new AppError('LAST_OWNER', 'a workspace must keep at least one owner', { httpStatus: 409 });
      } else {
        await trx.insertInto('workspace_members').values({ workspace_id: id, user_id: userId, role, added_at: now, added_by: actor.id }).execute();
      }
      await this.o.audit.record(trx, { action: before ? 'workspace.member.role' : 'workspace.member.add', actor: actor.id, outcome: 'success', targets: { workspace: id, user: userId, role, ...(before ? { previous: before.role } : {}) }, source });
    });
  }

  async removeMember(actor: Actor, id: string, userId: string, source: AuditSource, via = 'workspace.member.remove'): Promise<void> {
    // an access-review revocation was authorised by the review (owner checked there)
    if (via === 'workspace.member.remove') await this.require(actor, id, 'workspace:members', source);
    await this.o.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('workspace_members').where('workspace_id', '=', id).where('user_id', '=', userId).executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) throw errors.notFound('member');
      if ((await this.ownerCount(trx, id)) === 0) throw new AppError('LAST_OWNER', 'a workspace must keep at least one owner', { httpStatus: 409 });
      await this.o.audit.record(trx, { action: via, actor: actor.id, outcome: 'success', targets: { workspace: id, user: userId }, source });
    });
  }
}
