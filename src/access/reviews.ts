import { isoOrNull } from '../shared/time.js';
import crypto from 'node:crypto';
import type { AccessDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { Actor } from '../http/index.js';
import type { Policy } from './policy.js';
import type { JobDefinition } from '../jobs/index.js';
import { AppError, errors } from '../shared/errors.js';

export interface ReviewConfig {
  schedule: string;
  dueDays: number;
  idleDays: number;
}

export interface ReviewItemView {
  id: string;
  kind: 'membership' | 'role' | 'token';
  userId: string;
  username: string;
  workspaceId: string | null;
  /** the workspace's name, for reviewers who are members of it (need-to-know); null otherwise */
  workspaceName: string | null;
  tokenId: string | null;
  tokenName: string | null;
  role: string | null;
  reviewer: 'owner' | 'admin';
  lastSeenAt: string | null;
  idle: boolean;
  decision: 'confirm' | 'revoke' | null;
  decidedBy: string | null;
  /** the user name of whoever decided */
  decidedByName: string | null;
  decidedAt: string | null;
  /** the item is about the caller: someone else decides it */
  self: boolean;
}

export interface ReviewView {
  id: string;
  createdAt: string;
  dueAt: string;
  closedAt: string | null;
  pending: number;
  total: number;
}

/** who acts on a revocation (the accounts and workspaces services) */
export interface RevokeEffects {
  removeMember(actor: Actor, workspaceId: string, userId: string, source: AuditSource): Promise<void>;
  downgradeRole(userId: string, by: string, source: AuditSource): Promise<void>;
  revokeToken(tokenId: string, by: string, source: AuditSource): Promise<void>;
}

const DAY = 86_400_000;

/**
 * Access reviews (Z4). A campaign (quarterly by default, or started by an admin) lists every
 * workspace membership (decided by that workspace's owners), every appliance role and every live
 * API token (decided by admins). Each decision is audited; "revoke" takes effect at once. Reminders
 * go by e-mail; an overdue campaign raises an alert. The export (JSON, CSV) lists users × roles ×
 * workspaces × tokens × last use and flags accounts idle for more than `idleDays`.
 */
export class AccessReviews {
  constructor(
    private readonly o: {
      db: AccessDb;
      clock: Clock;
      log: Logger;
      audit: Auditor;
      alerts: Alerter;
      policy: Policy;
      cfg: ReviewConfig;
      effects: RevokeEffects;
      /** a workspace's name (decrypted); asked only for workspaces the caller is a member of */
      workspaceName?: ((id: string) => Promise<string>) | undefined;
      /** e-mails a reviewer (undefined when no mail server is configured) */
      notify?: ((userId: string, due: string) => Promise<void>) | undefined;
    },
  ) {}

  private idle(lastSeen: number | null, lastLogin: number | null, created: number): boolean {
    const last = Math.max(Number(lastSeen ?? 0), Number(lastLogin ?? 0), Number(created));
    return this.o.clock.nowMs() - last > this.o.cfg.idleDays * DAY;
  }

  async open(): Promise<{ id: string } | undefined> {
    return this.o.db.selectFrom('access_reviews').select('id').where('closed_at', 'is', null).executeTakeFirst();
  }

  async start(by: string, source: AuditSource): Promise<{ id: string; items: number }> {
    if (await this.open())
      throw new AppError('REVIEW_OPEN', 'an access review is already open; finish it first', {
        httpStatus: 409,
        exitCode: 2,
      });
    const now = this.o.clock.nowMs();
    const id = crypto.randomUUID();
    const members = await this.o.db
      .selectFrom('workspace_members')
      .innerJoin('workspaces', 'workspaces.id', 'workspace_members.workspace_id')
      .innerJoin('users', 'users.id', 'workspace_members.user_id')
      .select(['workspace_members.workspace_id', 'workspace_members.user_id', 'workspace_members.role'])
      .where('workspaces.state', '=', 'active')
      .where('users.state', '!=', 'disabled')
      .execute();
    const users = await this.o.db.selectFrom('users').select(['id', 'role']).where('state', '!=', 'disabled').execute();
    const tokens = await this.o.db
      .selectFrom('api_tokens')
      .select(['id', 'user_id'])
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
    const items = [
      ...members.map((m) => ({
        kind: 'membership',
        user_id: m.user_id,
        workspace_id: m.workspace_id,
        token_id: null,
        role: m.role,
        reviewer: 'owner',
      })),
      ...users.map((u) => ({
        kind: 'role',
        user_id: u.id,
        workspace_id: null,
        token_id: null,
        role: u.role,
        reviewer: 'admin',
      })),
      ...tokens.map((t) => ({
        kind: 'token',
        user_id: t.user_id,
        workspace_id: null,
        token_id: t.id,
        role: null,
        reviewer: 'admin',
      })),
    ].map((i) => ({
      ...i,
      id: crypto.randomUUID(),
      review_id: id,
      decision: null,
      decided_by: null,
      decided_at: null,
    }));
    await this.o.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('access_reviews')
        .values({
          id,
          created_at: now,
          created_by: by,
          due_at: now + this.o.cfg.dueDays * DAY,
          closed_at: null,
          reminded_at: null,
          overdue_alerted_at: null,
        })
        .execute();
      for (let i = 0; i < items.length; i += 200)
        await trx
          .insertInto('access_review_items')
          .values(items.slice(i, i + 200))
          .execute();
      await this.o.audit.record(trx, {
        action: 'access.review.start',
        actor: by,
        outcome: 'success',
        targets: { review: id, items: String(items.length) },
        source,
      });
    });
    return { id, items: items.length };
  }

  async list(): Promise<ReviewView[]> {
    const rows = await this.o.db
      .selectFrom('access_reviews')
      .selectAll()
      .orderBy('created_at', 'desc')
      .limit(50)
      .execute();
    return Promise.all(
      rows.map(async (r) => {
        const c = await this.o.db
          .selectFrom('access_review_items')
          .select((eb) => [eb.fn.countAll<number>().as('total'), eb.fn.count<number>('decision').as('decided')])
          .where('review_id', '=', r.id)
          .executeTakeFirstOrThrow();
        return {
          id: r.id,
          createdAt: isoOrNull(r.created_at)!,
          dueAt: isoOrNull(r.due_at)!,
          closedAt: isoOrNull(r.closed_at),
          total: Number(c.total),
          pending: Number(c.total) - Number(c.decided),
        };
      }),
    );
  }

  /** the items this actor may see: all for `access:review`; owners see their workspaces' memberships */
  async items(actor: Actor, reviewId: string): Promise<ReviewItemView[]> {
    const all = this.o.policy.hasPermission(actor, 'access:review');
    let q = this.o.db
      .selectFrom('access_review_items as i')
      .innerJoin('users as u', 'u.id', 'i.user_id')
      .leftJoin('api_tokens as t', 't.id', 'i.token_id')
      .select([
        'i.id',
        'i.kind',
        'i.user_id',
        'u.username',
        'i.workspace_id',
        'i.token_id',
        't.name as token_name',
        'i.role',
        'i.reviewer',
        'u.last_seen_at',
        'u.last_login_at',
        'u.created_at',
        'i.decision',
        'i.decided_by',
        'i.decided_at',
      ])
      .where('i.review_id', '=', reviewId)
      .orderBy('i.kind')
      .orderBy('u.username_key');
    if (!all) {
      if (!actor.userId || !this.o.policy.hasPermission(actor, 'workspace:use')) return [];
      const owned = this.o.db
        .selectFrom('workspace_members')
        .select('workspace_id')
        .where('user_id', '=', actor.userId)
        .where('role', '=', 'owner');
      q = q.where('i.kind', '=', 'membership').where('i.workspace_id', 'in', owned);
    }
    const rows = await q.execute();
    const mine = actor.userId
      ? new Set(
          (
            await this.o.db
              .selectFrom('workspace_members')
              .select('workspace_id')
              .where('user_id', '=', actor.userId)
              .execute()
          ).map((m) => m.workspace_id),
        )
      : new Set<string>();
    const wsNames = new Map<string, string | null>();
    for (const w of new Set(rows.map((r) => r.workspace_id).filter((w): w is string => w !== null))) {
      wsNames.set(w, mine.has(w) && this.o.workspaceName ? await this.o.workspaceName(w).catch(() => null) : null);
    }
    const deciders = await this.namesOf(rows.map((r) => r.decided_by).filter((d): d is string => d !== null));
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind as ReviewItemView['kind'],
      userId: r.user_id,
      username: r.username,
      workspaceId: r.workspace_id,
      workspaceName: r.workspace_id ? (wsNames.get(r.workspace_id) ?? null) : null,
      tokenId: r.token_id,
      tokenName: r.token_name ?? null,
      role: r.role,
      reviewer: r.reviewer as 'owner' | 'admin',
      lastSeenAt: isoOrNull(r.last_seen_at),
      idle: this.idle(r.last_seen_at, r.last_login_at, r.created_at),
      decision: r.decision as ReviewItemView['decision'],
      decidedBy: r.decided_by,
      decidedByName: r.decided_by ? (deciders.get(r.decided_by) ?? null) : null,
      decidedAt: isoOrNull(r.decided_at),
      self: actor.userId !== undefined && r.user_id === actor.userId,
    }));
  }

  /** user names of actors (`user:<id>`, `token:<id>`); others (local:, job:) keep their id */
  private async namesOf(actors: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const userIds = [...new Set(actors.filter((a) => a.startsWith('user:')).map((a) => a.slice(5)))];
    const tokenIds = [...new Set(actors.filter((a) => a.startsWith('token:')).map((a) => a.slice(6)))];
    if (userIds.length)
      for (const u of await this.o.db
        .selectFrom('users')
        .select(['id', 'username'])
        .where('id', 'in', userIds)
        .execute())
        out.set(`user:${u.id}`, u.username);
    if (tokenIds.length) {
      const rows = await this.o.db
        .selectFrom('api_tokens')
        .innerJoin('users', 'users.id', 'api_tokens.user_id')
        .select(['api_tokens.id', 'users.username'])
        .where('api_tokens.id', 'in', tokenIds)
        .execute();
      for (const t of rows) out.set(`token:${t.id}`, t.username);
    }
    for (const a of actors) if (!out.has(a)) out.set(a, a);
    return out;
  }

  /** whether `userId` is the only owner of the workspace (then nobody else owns it to review them) */
  private async soleOwner(workspaceId: string, userId: string): Promise<boolean> {
    const owners = await this.o.db
      .selectFrom('workspace_members')
      .select('user_id')
      .where('workspace_id', '=', workspaceId)
      .where('role', '=', 'owner')
      .execute();
    return owners.length === 1 && owners[0]!.user_id === userId;
  }

  /** L4: an export of the directory is recorded before it is made */
  async recordExport(by: string, format: string, source: AuditSource): Promise<void> {
    await this.o.audit.recordNow({
      action: 'access.review.export',
      actor: by,
      outcome: 'success',
      targets: { format },
      source,
    });
  }

  /** records a decision; "revoke" takes effect; the campaign closes when nothing is pending */
  async decide(
    actor: Actor,
    reviewId: string,
    itemId: string,
    decision: 'confirm' | 'revoke',
    source: AuditSource,
  ): Promise<void> {
    const item = await this.o.db
      .selectFrom('access_review_items')
      .selectAll()
      .where('id', '=', itemId)
      .where('review_id', '=', reviewId)
      .executeTakeFirst();
    const review = await this.o.db
      .selectFrom('access_reviews')
      .selectAll()
      .where('id', '=', reviewId)
      .executeTakeFirst();
    try {
      if (!item || !review) throw errors.notFound('review item');
      // Z4: nobody reviews their own access (membership, role or token)
      if (actor.userId !== undefined && item.user_id === actor.userId)
        throw new AppError('SELF_REVIEW', 'you cannot review your own access; another reviewer decides it', {
          httpStatus: 409,
          exitCode: 2,
        });
      if (item.reviewer === 'owner') {
        // owners decide for their workspace (its existence stays need-to-know); a sole owner's own
        // membership, which no other owner can review, goes to the access reviewers (admins)
        const byAdmin =
          this.o.policy.hasPermission(actor, 'access:review') &&
          (await this.soleOwner(item.workspace_id!, item.user_id));
        if (!byAdmin) await this.o.policy.requireWorkspace(actor, item.workspace_id!, 'workspace:members');
      } else if (!this.o.policy.hasPermission(actor, 'access:review'))
        throw new AppError('NOT_REVIEWER', 'only access reviewers decide roles and tokens', { httpStatus: 403 });
      if (review.closed_at !== null || item.decision !== null)
        throw new AppError('ALREADY_DECIDED', 'this access was already reviewed', { httpStatus: 409, exitCode: 2 });
    } catch (e) {
      // L4: every refused decision is recorded (ids only)
      if (e instanceof AppError) {
        await this.o.audit.recordNow({
          action: 'access.review.decision',
          actor: actor.id,
          outcome: 'denied',
          reason: e.code,
          targets: { review: reviewId.slice(0, 100), item: itemId.slice(0, 100), decision },
          source,
        });
        if (e.code === 'NOT_REVIEWER') throw errors.forbidden();
      }
      throw e;
    }
    if (decision === 'revoke') {
      if (item.kind === 'membership')
        await this.o.effects.removeMember(actor, item.workspace_id!, item.user_id, source);
      else if (item.kind === 'role') await this.o.effects.downgradeRole(item.user_id, actor.id, source);
      else await this.o.effects.revokeToken(item.token_id!, actor.id, source);
    }
    await this.o.db.transaction().execute(async (trx) => {
      const now = this.o.clock.nowMs();
      const r = await trx
        .updateTable('access_review_items')
        .set({ decision, decided_by: actor.id, decided_at: now })
        .where('id', '=', itemId)
        .where('decision', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1)
        throw new AppError('ALREADY_DECIDED', 'this access was already reviewed', { httpStatus: 409, exitCode: 2 });
      await this.o.audit.record(trx, {
        action: 'access.review.decision',
        actor: actor.id,
        outcome: 'success',
        reason: decision.toUpperCase(),
        targets: {
          review: reviewId,
          item: itemId,
          user: item.user_id,
          ...(item.workspace_id ? { workspace: item.workspace_id } : {}),
          ...(item.token_id ? { token: item.token_id } : {}),
        },
        source,
      });
      const left = await trx
        .selectFrom('access_review_items')
        .select('id')
        .where('review_id', '=', reviewId)
        .where('decision', 'is', null)
        .limit(1)
        .execute();
      if (left.length === 0) {
        await trx.updateTable('access_reviews').set({ closed_at: now }).where('id', '=', reviewId).execute();
        await this.o.audit.record(trx, {
          action: 'access.review.close',
          actor: actor.id,
          outcome: 'success',
          targets: { review: reviewId },
          source,
        });
      }
    });
  }

  /** the users who answer for pending items: owners of the workspaces concerned, active admins */
  private async reviewersOf(pending: { reviewer: string; workspace_id: string | null }[]): Promise<string[]> {
    const to = new Set<string>();
    const wsIds = [...new Set(pending.filter((p) => p.reviewer === 'owner').map((p) => p.workspace_id!))];
    if (wsIds.length)
      for (const o of await this.o.db
        .selectFrom('workspace_members')
        .select('user_id')
        .where('role', '=', 'owner')
        .where('workspace_id', 'in', wsIds)
        .execute())
        to.add(o.user_id);
    if (pending.some((p) => p.reviewer === 'admin'))
      for (const a of await this.o.db
        .selectFrom('users')
        .select('id')
        .where('role', '=', 'admin')
        .where('state', '=', 'active')
        .execute())
        to.add(a.id);
    return [...to];
  }

  private async sendReminders(reviewId: string, due: string, to: string[]): Promise<number> {
    let reminded = 0;
    for (const u of to) {
      await this.o.notify!(u, due).then(
        () => reminded++,
        (e: unknown) => this.o.log.warn({ err: e, event: 'access.review.remind_failed' }, 'review reminder not sent'),
      );
    }
    await this.o.db
      .updateTable('access_reviews')
      .set({ reminded_at: this.o.clock.nowMs() })
      .where('id', '=', reviewId)
      .execute();
    return reminded;
  }

  /**
   * An admin's "remind reviewers now" on an open campaign: e-mails every reviewer who still has
   * pending items, at once (not more than once per `minIntervalMs`, so a button cannot flood
   * people). Audited before anything is sent (`access.review.remind`, fail closed).
   */
  async remindNow(
    reviewId: string,
    by: string,
    source: AuditSource,
    minIntervalMs = 60 * 60_000,
  ): Promise<{ reviewers: number; reminded: number }> {
    const r = await this.o.db.selectFrom('access_reviews').selectAll().where('id', '=', reviewId).executeTakeFirst();
    if (!r) throw errors.notFound('access review');
    if (r.closed_at !== null)
      throw new AppError('REVIEW_CLOSED', 'this access review is closed', { httpStatus: 409, exitCode: 2 });
    if (!this.o.notify)
      throw new AppError('MAIL_NOT_CONFIGURED', 'reminders go by e-mail and no mail server is configured', {
        httpStatus: 409,
        exitCode: 2,
        hint: 'configure the mail.smtp section',
      });
    const now = this.o.clock.nowMs();
    if (r.reminded_at !== null && now - Number(r.reminded_at) < minIntervalMs) {
      const mins = Math.ceil((minIntervalMs - (now - Number(r.reminded_at))) / 60_000);
      throw new AppError(
        'REMINDED_RECENTLY',
        `reviewers were reminded less than ${Math.round(minIntervalMs / 60_000)} minutes ago; try again in ${mins} minute(s)`,
        { httpStatus: 409, exitCode: 2 },
      );
    }
    const pending = await this.o.db
      .selectFrom('access_review_items')
      .select(['reviewer', 'workspace_id'])
      .where('review_id', '=', r.id)
      .where('decision', 'is', null)
      .execute();
    const to = pending.length ? await this.reviewersOf(pending) : [];
    await this.o.audit.recordNow({
      action: 'access.review.remind',
      actor: by,
      outcome: 'success',
      targets: { review: r.id, reviewers: String(to.length) },
      source,
    });
    if (!to.length) return { reviewers: 0, reminded: 0 };
    return { reviewers: to.length, reminded: await this.sendReminders(r.id, isoOrNull(r.due_at)!, to) };
  }

  /** daily: reminders (at most weekly) to reviewers with pending items; one alert when overdue */
  async remind(): Promise<{ reminded: number; overdue: boolean }> {
    const r = await this.o.db
      .selectFrom('access_reviews')
      .selectAll()
      .where('closed_at', 'is', null)
      .executeTakeFirst();
    if (!r) return { reminded: 0, overdue: false };
    const now = this.o.clock.nowMs();
    let reminded = 0;
    const pending = await this.o.db
      .selectFrom('access_review_items')
      .select(['reviewer', 'workspace_id'])
      .where('review_id', '=', r.id)
      .where('decision', 'is', null)
      .execute();
    if (pending.length && this.o.notify && (r.reminded_at === null || now - Number(r.reminded_at) >= 7 * DAY)) {
      reminded = await this.sendReminders(r.id, isoOrNull(r.due_at)!, await this.reviewersOf(pending));
    }
    let overdue = false;
    if (pending.length && now > Number(r.due_at) && r.overdue_alerted_at === null) {
      overdue = true;
      await this.o.db.updateTable('access_reviews').set({ overdue_alerted_at: now }).where('id', '=', r.id).execute();
      await this.o.alerts.raise({
        kind: 'access.review.overdue',
        severity: 'warning',
        message: `access review overdue: ${pending.length} decision(s) pending since ${isoOrNull(r.due_at)}`,
        targets: { review: r.id },
      });
    }
    return { reminded, overdue };
  }

  /** Z4: users × roles × workspaces × tokens × last use, idle accounts flagged */
  async exportRows(): Promise<ExportUser[]> {
    const now = this.o.clock.nowMs();
    const users = await this.o.db
      .selectFrom('users')
      .select(['id', 'username', 'role', 'state', 'mfa_method', 'created_at', 'last_login_at', 'last_seen_at'])
      .orderBy('username_key')
      .execute();
    const members = await this.o.db
      .selectFrom('workspace_members')
      .select(['user_id', 'workspace_id', 'role'])
      .execute();
    const tokens = await this.o.db
      .selectFrom('api_tokens')
      .select(['id', 'user_id', 'name', 'scopes', 'expires_at', 'last_used_at'])
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
    return users.map((u) => ({
      id: u.id,
      username: u.username,
      role: u.role,
      state: u.state,
      secondFactor: u.mfa_method,
      lastLoginAt: isoOrNull(u.last_login_at),
      lastSeenAt: isoOrNull(u.last_seen_at),
      idleOver: this.idle(u.last_seen_at, u.last_login_at, u.created_at) ? this.o.cfg.idleDays : null,
      workspaces: members.filter((m) => m.user_id === u.id).map((m) => ({ id: m.workspace_id, role: m.role })),
      tokens: tokens
        .filter((t) => t.user_id === u.id)
        .map((t) => ({
          id: t.id,
          name: t.name,
          scopes: JSON.parse(t.scopes) as string[],
          expiresAt: isoOrNull(t.expires_at)!,
          lastUsedAt: isoOrNull(t.last_used_at),
        })),
    }));
  }

  static toCsv(rows: ExportUser[]): string {
    const esc = (v: unknown) => {
      const s = v === null || v === undefined ? '' : String(v);
      // CSV injection: a cell starting with = + - @ is prefixed so spreadsheets do not run it
      const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
      return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
    };
    const head = [
      'user_id',
      'username',
      'role',
      'state',
      'second_factor',
      'last_login_at',
      'last_seen_at',
      'idle',
      'kind',
      'workspace_id',
      'workspace_role',
      'token_id',
      'token_name',
      'token_scopes',
      'token_expires_at',
      'token_last_used_at',
    ];
    const lines = [head.join(',')];
    for (const u of rows) {
      const base = [
        u.id,
        u.username,
        u.role,
        u.state,
        u.secondFactor,
        u.lastLoginAt,
        u.lastSeenAt,
        u.idleOver !== null ? `idle>${u.idleOver}d` : '',
      ];
      const extra: unknown[][] = [
        ...u.workspaces.map((w) => ['workspace', w.id, w.role, '', '', '', '', '']),
        ...u.tokens.map((t) => ['token', '', '', t.id, t.name, t.scopes.join(' '), t.expiresAt, t.lastUsedAt]),
      ];
      if (!extra.length) extra.push(['account', '', '', '', '', '', '', '']);
      for (const e of extra) lines.push([...base, ...e].map(esc).join(','));
    }
    return lines.join('\r\n') + '\r\n';
  }

  jobs(): JobDefinition[] {
    return [
      {
        name: 'access.review',
        schedule: this.o.cfg.schedule,
        // no catch-up: a new appliance does not open a review at its first start
        run: async (ctx) => {
          if (await this.open()) return { started: false, reason: 'a review is already open' };
          const r = await this.start(ctx.actor, {});
          return { started: true, id: r.id, items: r.items };
        },
      },
      { name: 'access.review.remind', schedule: '0 8 * * *', run: async () => this.remind() },
    ];
  }
}

export interface ExportUser {
  id: string;
  username: string;
  role: string;
  state: string;
  secondFactor: string | null;
  lastLoginAt: string | null;
  lastSeenAt: string | null;
  /** the idle threshold (days) when the account is idle past it, else null */
  idleOver: number | null;
  workspaces: { id: string; role: string }[];
  tokens: { id: string; name: string; scopes: string[]; expiresAt: string; lastUsedAt: string | null }[];
}
