import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditSource, Auditor } from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { Actor } from '../http/index.js';
import type { Clock } from '../shared/clock.js';
import { DAY } from './retention.js';
import { recordsErrors } from './errors.js';

export type ScopeKind = 'workspace' | 'folder' | 'document';
export interface Scope {
  kind: ScopeKind;
  id: string;
}

/** Where a scope lives: its workspace id, or null when it does not exist (ids only). */
export interface Places {
  workspaceOf(scope: Scope): Promise<string | null>;
}

export type ChangeRequest =
  { kind: 'retention'; scope: Scope; minDays: number | null } | { kind: 'release-hold'; holdId: string };

export interface RequestInfo {
  id: string;
  kind: string;
  scope: Scope | null;
  workspaceId: string;
  minDays: number | null;
  holdId: string | null;
  requestedBy: string;
  requestedAt: string;
  expiresAt: string;
  state: string;
  decidedBy: string | null;
  decidedAt: string | null;
}

export interface RequestsDeps {
  db: Kysely<RecordsSchema>;
  clock: Clock;
  audit: Auditor;
  places: Places;
  /** how long a request waits for its second person */
  requestTtlDays: number;
}

type Caller = { actor: Actor; source?: AuditSource };
const iso = (t: number | string | null) => (t === null ? null : new Date(Number(t)).toISOString());
export const MAX_DAYS = 36_500;

/**
 * Retention policies and legal holds, changed by people holding `records:manage`:
 * - a hold is placed by one person (it only protects) and released by two;
 * - a policy is set, changed or removed by two: one asks, another approves (never the same user,
 *   whatever credential they use); requests expire.
 * Every step is audited in the transaction that makes it.
 */
export class RecordsRequests {
  constructor(private readonly d: RequestsDeps) {}

  private userOf(c: Caller): string {
    if (!c.actor.userId) throw recordsErrors.needsUser();
    return c.actor.userId;
  }

  private ev(
    c: Caller,
    action: string,
    targets: Record<string, string>,
    outcome: 'success' | 'denied' = 'success',
    reason?: string,
  ) {
    return {
      action,
      actor: c.actor.id,
      outcome,
      targets,
      ...(reason ? { reason } : {}),
      ...(c.source ? { source: c.source } : {}),
    };
  }

  async ask(c: Caller, r: ChangeRequest): Promise<RequestInfo> {
    const user = this.userOf(c);
    const now = this.d.clock.nowMs();
    let row: RecordsSchema['records_requests'];
    const base = {
      id: crypto.randomUUID(),
      requested_by: user,
      requested_at: now,
      expires_at: now + this.d.requestTtlDays * DAY,
      state: 'pending',
      decided_by: null,
      decided_at: null,
    };
    if (r.kind === 'retention') {
      if (r.scope.kind === 'document')
        throw recordsErrors.invalidInput('a retention policy applies to a workspace or a folder');
      if (r.minDays !== null && (!Number.isInteger(r.minDays) || r.minDays < 1 || r.minDays > MAX_DAYS))
        throw recordsErrors.invalidInput(
          `minDays must be an integer from 1 to ${MAX_DAYS}, or null to remove the policy`,
        );
      const ws = await this.d.places.workspaceOf(r.scope);
      if (!ws) throw r.scope.kind === 'folder' ? recordsErrors.folderNotFound() : recordsErrors.workspaceNotFound();
      row = {
        ...base,
        kind: 'retention',
        scope_kind: r.scope.kind,
        scope_id: r.scope.id,
        workspace_id: ws,
        min_days: r.minDays,
        hold_id: null,
      };
    } else {
      const h = await this.d.db
        .selectFrom('records_holds')
        .select(['id', 'workspace_id'])
        .where('id', '=', r.holdId)
        .where('released_at', 'is', null)
        .executeTakeFirst();
      if (!h) throw recordsErrors.holdNotFound();
      row = {
        ...base,
        kind: 'release-hold',
        scope_kind: null,
        scope_id: null,
        workspace_id: h.workspace_id,
        min_days: null,
        hold_id: h.id,
      };
    }
    await this.d.db.transaction().execute(async (trx) => {
      await trx.insertInto('records_requests').values(row).execute();
      await this.d.audit.record(
        trx,
        this.ev(c, 'records.request', {
          request: row.id,
          workspace: row.workspace_id,
          ...(row.hold_id ? { hold: row.hold_id } : {}),
          ...(row.scope_kind ? { [row.scope_kind]: row.scope_id! } : {}),
        }),
      );
    });
    return info(row);
  }

  async decide(c: Caller, id: string, decision: 'approve' | 'reject'): Promise<RequestInfo> {
    const user = this.userOf(c);
    const now = this.d.clock.nowMs();
    const action = decision === 'approve' ? 'records.approve' : 'records.reject';
    const out = await this.d.db.transaction().execute(async (trx) => {
      const r = await trx.selectFrom('records_requests').selectAll().where('id', '=', id).executeTakeFirst();
      if (!r) throw recordsErrors.requestNotFound();
      if (r.state !== 'pending') throw recordsErrors.requestClosed(r.state);
      if (Number(r.expires_at) <= now) throw recordsErrors.requestClosed('expired');
      // the asker may withdraw their own request, never approve it
      if (decision === 'approve' && r.requested_by === user) return { denied: true as const, r };
      const upd = await trx
        .updateTable('records_requests')
        .set({
          state: decision === 'approve' ? 'approved' : r.requested_by === user ? 'cancelled' : 'rejected',
          decided_by: user,
          decided_at: now,
        })
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) throw recordsErrors.requestClosed('decided');
      if (decision === 'approve') {
        if (r.kind === 'retention') {
          await trx
            .deleteFrom('records_policies')
            .where('scope_kind', '=', r.scope_kind!)
            .where('scope_id', '=', r.scope_id!)
            .execute();
          if (r.min_days !== null)
            await trx
              .insertInto('records_policies')
              .values({
                scope_kind: r.scope_kind!,
                scope_id: r.scope_id!,
                workspace_id: r.workspace_id,
                min_days: r.min_days,
                set_at: now,
                requested_by: r.requested_by,
                approved_by: user,
              })
              .execute();
          await this.d.audit.record(
            trx,
            this.ev(c, r.min_days === null ? 'records.policy.remove' : 'records.policy.set', {
              request: id,
              workspace: r.workspace_id,
              [r.scope_kind!]: r.scope_id!,
              ...(r.min_days !== null ? { days: String(r.min_days) } : {}),
            }),
          );
        } else {
          const rel = await trx
            .updateTable('records_holds')
            .set({ released_at: now, released_by: user })
            .where('id', '=', r.hold_id!)
            .where('released_at', 'is', null)
            .executeTakeFirst();
          if (Number(rel.numUpdatedRows) !== 1) throw recordsErrors.holdNotFound();
          await this.d.audit.record(
            trx,
            this.ev(c, 'records.hold.release', { request: id, workspace: r.workspace_id, hold: r.hold_id! }),
          );
        }
      }
      await this.d.audit.record(trx, this.ev(c, action, { request: id, workspace: r.workspace_id }));
      return {
        denied: false as const,
        r: {
          ...r,
          state: decision === 'approve' ? 'approved' : r.requested_by === user ? 'cancelled' : 'rejected',
          decided_by: user,
          decided_at: now,
        },
      };
    });
    if (out.denied) {
      await this.d.audit.recordNow(
        this.ev(c, action, { request: id, workspace: out.r.workspace_id }, 'denied', 'SECOND_PERSON_REQUIRED'),
      );
      throw recordsErrors.selfApproval();
    }
    return info(out.r);
  }

  async placeHold(c: Caller, scope: Scope): Promise<HoldInfo> {
    const user = this.userOf(c);
    const ws = await this.d.places.workspaceOf(scope);
    if (!ws)
      throw scope.kind === 'document'
        ? recordsErrors.documentNotFound()
        : scope.kind === 'folder'
          ? recordsErrors.folderNotFound()
          : recordsErrors.workspaceNotFound();
    const row = {
      id: crypto.randomUUID(),
      scope_kind: scope.kind,
      scope_id: scope.id,
      workspace_id: ws,
      placed_at: this.d.clock.nowMs(),
      placed_by: user,
      released_at: null,
      released_by: null,
    };
    await this.d.db.transaction().execute(async (trx) => {
      await trx.insertInto('records_holds').values(row).execute();
      await this.d.audit.record(
        trx,
        this.ev(c, 'records.hold.place', { hold: row.id, workspace: ws, [scope.kind]: scope.id }),
      );
    });
    return holdInfo(row);
  }

  /** Policies, active holds and open requests (ids only), for the records managers. */
  async overview(c: Caller): Promise<{ policies: PolicyInfo[]; holds: HoldInfo[]; requests: RequestInfo[] }> {
    const [p, h, r] = await Promise.all([
      this.d.db.selectFrom('records_policies').selectAll().orderBy('set_at', 'desc').execute(),
      this.d.db
        .selectFrom('records_holds')
        .selectAll()
        .where('released_at', 'is', null)
        .orderBy('placed_at', 'desc')
        .execute(),
      this.d.db
        .selectFrom('records_requests')
        .selectAll()
        .where('state', '=', 'pending')
        .where('expires_at', '>', this.d.clock.nowMs())
        .orderBy('requested_at', 'desc')
        .execute(),
    ]);
    await this.d.audit.recordNow(this.ev(c, 'records.read', {}));
    return {
      policies: p.map((x) => ({
        scope: { kind: x.scope_kind as ScopeKind, id: x.scope_id },
        workspaceId: x.workspace_id,
        minDays: Number(x.min_days),
        setAt: iso(x.set_at)!,
        requestedBy: x.requested_by,
        approvedBy: x.approved_by,
      })),
      holds: h.map(holdInfo),
      requests: r.map(info),
    };
  }
}

export interface PolicyInfo {
  scope: Scope;
  workspaceId: string;
  minDays: number;
  setAt: string;
  requestedBy: string;
  approvedBy: string;
}
export interface HoldInfo {
  id: string;
  scope: Scope;
  workspaceId: string;
  placedAt: string;
  placedBy: string;
}
const holdInfo = (h: RecordsSchema['records_holds']): HoldInfo => ({
  id: h.id,
  scope: { kind: h.scope_kind as ScopeKind, id: h.scope_id },
  workspaceId: h.workspace_id,
  placedAt: iso(h.placed_at)!,
  placedBy: h.placed_by,
});

function info(r: RecordsSchema['records_requests']): RequestInfo {
  return {
    id: r.id,
    kind: r.kind,
    scope: r.scope_kind ? { kind: r.scope_kind as ScopeKind, id: r.scope_id! } : null,
    workspaceId: r.workspace_id,
    minDays: r.min_days === null ? null : Number(r.min_days),
    holdId: r.hold_id,
    requestedBy: r.requested_by,
    requestedAt: iso(r.requested_at)!,
    expiresAt: iso(r.expires_at)!,
    state: r.state,
    decidedBy: r.decided_by,
    decidedAt: iso(r.decided_at),
  };
}
