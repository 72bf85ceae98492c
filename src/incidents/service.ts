import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { IncidentsSchema } from '../db/index.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import type {
  ActionKind,
  AffectedKind,
  BreachClock,
  BreachDetails,
  DoraFields,
  Incident,
  IncidentAction,
  IncidentSeverity,
  IncidentStatus,
  IncidentUpdate,
} from './types.js';

const HOUR = 3_600_000;
export const BREACH_NOTIFY_MS = 72 * HOUR;

export const incidentErrors = {
  notFound: () => new AppError('INCIDENT_NOT_FOUND', 'no such incident', { httpStatus: 404, exitCode: 1 }),
  actionNotFound: () =>
    new AppError('INCIDENT_ACTION_NOT_FOUND', 'no such action in this incident', { httpStatus: 404, exitCode: 1 }),
  actionsOpen: (n: number) =>
    new AppError(
      'INCIDENT_ACTIONS_OPEN',
      `${n} corrective or preventive action(s) are still open: close them before resolving the incident`,
      { httpStatus: 409, exitCode: 1 },
    ),
  resolved: () =>
    new AppError('INCIDENT_RESOLVED', 'the incident is resolved: reopen it with a status update first', {
      httpStatus: 409,
      exitCode: 1,
    }),
  actionClosed: () =>
    new AppError('INCIDENT_ACTION_CLOSED', 'this action is already closed', { httpStatus: 409, exitCode: 1 }),
  invalid: (m: string) => new AppError('INCIDENT_INVALID', m, { httpStatus: 400, exitCode: 2 }),
};

/** free text: no control characters (line breaks allowed in long text) and no bidi or invisible format characters */
const BAD_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
function text(v: string, what: string, max: number, multiline = false): string {
  const t = v.normalize('NFC').trim();
  if (!t.length) throw incidentErrors.invalid(`${what} is empty`);
  if (t.length > max) throw incidentErrors.invalid(`${what} is longer than ${max} characters`);
  if (BAD_TEXT.test(t) || (!multiline && /[\r\n\t]/.test(t)))
    throw incidentErrors.invalid(`${what} holds control or invisible format characters`);
  return t;
}
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface CreateInput {
  title: string;
  severity: IncidentSeverity;
  /** default: now */
  detectedAt?: number;
  personalData?: boolean;
  message?: string;
  components?: string[];
  /** a draft (a user's report, or opened by an alert) */
  draft?: boolean;
  alertId?: string;
}

export interface EditInput {
  title?: string;
  severity?: IncidentSeverity;
  detectedAt?: number;
  personalData?: boolean;
  rootCause?: string | null;
  breach?: BreachDetails | null;
  dora?: DoraFields | null;
  publicTitle?: string | null;
  authorityNotifiedAt?: number | null;
}

export interface UpdateInput {
  status: IncidentStatus;
  message: string;
  /** shown on the status page and in the banner, mailed to affected users */
  publicMessage?: { en?: string; fr?: string };
}

export interface IncidentServiceOptions {
  db: Kysely<IncidentsSchema>;
  audit: Auditor;
  clock: Clock;
  /** which of these ids exist (workspaces: the access module; users: the auth module) */
  existing: {
    workspaces(ids: readonly string[]): Promise<Set<string>>;
    users(ids: readonly string[]): Promise<Set<string>>;
  };
  /** after a public update is committed (banner, e-mail) */
  onPublicUpdate?: (incidentId: string, updateId: number) => Promise<void> | void;
}

/**
 * The incident register (docs/incidents.md). Every change is one transaction with its audit record
 * (`incident.*`, ids only: titles and messages never reach the audit trail). An incident cannot be
 * resolved while a corrective or preventive action is open (INCIDENT_ACTIONS_OPEN, 409).
 */
export class IncidentService {
  constructor(private readonly o: IncidentServiceOptions) {}

  private now(): number {
    return this.o.clock.nowMs();
  }

  async create(i: CreateInput, actor: string, source?: AuditSource): Promise<Incident> {
    const now = this.now();
    const id = crypto.randomUUID();
    const title = text(i.title, 'title', 200);
    const detectedAt = i.detectedAt ?? now;
    if (!Number.isFinite(detectedAt) || detectedAt > now + 60_000)
      throw incidentErrors.invalid('detectedAt is in the future');
    const status: IncidentStatus = i.draft ? 'draft' : 'investigating';
    const components = (i.components ?? []).map((c) => text(c, 'component', 64));
    const message =
      i.message === undefined ? (i.draft ? 'reported' : 'opened') : text(i.message, 'message', 5000, true);
    await this.o.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('incidents')
        .values({
          id,
          title,
          severity: i.severity,
          status,
          created_at: now,
          created_by: actor,
          detected_at: detectedAt,
          updated_at: now,
          resolved_at: null,
          personal_data: i.personalData ? 1 : 0,
          root_cause: null,
          breach: null,
          dora: null,
          authority_notified_at: null,
          public_title: null,
          alert_id: i.alertId ?? null,
        })
        .execute();
      await trx
        .insertInto('incident_updates')
        .values({ incident_id: id, at: now, actor, status, message, public: 0, public_message: null })
        .execute();
      for (const c of new Set(components))
        await trx.insertInto('incident_affected').values({ incident_id: id, kind: 'component', ref: c }).execute();
      await this.o.audit.record(trx, {
        action: i.draft ? 'incident.report' : 'incident.create',
        actor,
        outcome: 'success',
        targets: { incident: id, ...(i.alertId ? { alert: i.alertId } : {}) },
        ...(source ? { source } : {}),
      });
    });
    return this.get(id);
  }

  /**
   * A draft opened by an alert, unless one already exists for that alert (one draft per ongoing
   * condition). Returns the new incident's id, or null when the alert already has its draft.
   */
  async draftForAlert(alertId: string, i: CreateInput, actor: string): Promise<string | null> {
    const had = await this.o.db.selectFrom('incidents').select('id').where('alert_id', '=', alertId).executeTakeFirst();
    if (had) return null;
    return (await this.create({ ...i, draft: true, alertId }, actor)).id;
  }

  async edit(id: string, e: EditInput, actor: string, source?: AuditSource): Promise<Incident> {
    const now = this.now();
    const set: Partial<IncidentsSchema['incidents']> = { updated_at: now };
    if (e.title !== undefined) set.title = text(e.title, 'title', 200);
    if (e.severity !== undefined) set.severity = e.severity;
    if (e.detectedAt !== undefined) {
      if (e.detectedAt > now + 60_000) throw incidentErrors.invalid('detectedAt is in the future');
      set.detected_at = e.detectedAt;
    }
    if (e.personalData !== undefined) set.personal_data = e.personalData ? 1 : 0;
    if (e.rootCause !== undefined)
      set.root_cause = e.rootCause === null ? null : text(e.rootCause, 'rootCause', 10_000, true);
    if (e.breach !== undefined) set.breach = e.breach === null ? null : JSON.stringify(checkBreach(e.breach));
    if (e.dora !== undefined) set.dora = e.dora === null ? null : JSON.stringify(e.dora);
    if (e.publicTitle !== undefined)
      set.public_title = e.publicTitle === null ? null : text(e.publicTitle, 'publicTitle', 200);
    if (e.authorityNotifiedAt !== undefined) {
      if (e.authorityNotifiedAt !== null && e.authorityNotifiedAt > now + 60_000)
        throw incidentErrors.invalid('authorityNotifiedAt is in the future');
      set.authority_notified_at = e.authorityNotifiedAt;
    }
    await this.o.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('incidents').set(set).where('id', '=', id).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw incidentErrors.notFound();
      // which fields changed, as a code (e.g. BREACH_ROOTCAUSE): never their text
      const fields = Object.keys(e)
        .filter((k) => (e as Record<string, unknown>)[k] !== undefined)
        .sort()
        .map((k) => k.toUpperCase())
        .join('_');
      await this.o.audit.record(trx, {
        action: 'incident.edit',
        actor,
        outcome: 'success',
        reason: fields.slice(0, 64) || 'NONE',
        targets: { incident: id },
        ...(source ? { source } : {}),
      });
    });
    return this.get(id);
  }

  /** A timeline entry, possibly changing the status. Resolving needs every action closed. */
  async addUpdate(
    id: string,
    u: UpdateInput,
    actor: string,
    source?: AuditSource,
  ): Promise<{ incident: Incident; updateId: number }> {
    const now = this.now();
    const message = text(u.message, 'message', 5000, true);
    const pub = u.publicMessage
      ? {
          ...(u.publicMessage.en ? { en: text(u.publicMessage.en, 'publicMessage.en', 2000, true) } : {}),
          ...(u.publicMessage.fr ? { fr: text(u.publicMessage.fr, 'publicMessage.fr', 2000, true) } : {}),
        }
      : null;
    if (pub && !pub.en && !pub.fr) throw incidentErrors.invalid('publicMessage needs en or fr');
    const updateId = await this.o.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('incidents')
        .select(['status', 'public_title'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw incidentErrors.notFound();
      if (u.status === 'draft' && row.status !== 'draft')
        throw incidentErrors.invalid('an incident taken in hand cannot go back to draft');
      if (pub && row.public_title === null)
        throw incidentErrors.invalid('set the public title (publicTitle) before publishing an update');
      if (u.status === 'resolved') {
        const open = await trx
          .selectFrom('incident_actions')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('incident_id', '=', id)
          .where('state', '=', 'open')
          .executeTakeFirst();
        if (Number(open?.n ?? 0) > 0) throw incidentErrors.actionsOpen(Number(open!.n));
      }
      const r = await trx
        .insertInto('incident_updates')
        .values({
          incident_id: id,
          at: now,
          actor,
          status: u.status,
          message,
          public: pub ? 1 : 0,
          public_message: pub ? JSON.stringify(pub) : null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .updateTable('incidents')
        .set({ status: u.status, updated_at: now, resolved_at: u.status === 'resolved' ? now : null })
        .where('id', '=', id)
        .execute();
      await this.o.audit.record(trx, {
        action: u.status !== row.status ? 'incident.status' : 'incident.update',
        actor,
        outcome: 'success',
        reason: `${row.status.toUpperCase()}_TO_${u.status.toUpperCase()}${pub ? '_PUBLIC' : ''}`,
        targets: { incident: id, update: String(r.id) },
        ...(source ? { source } : {}),
      });
      return Number(r.id);
    });
    if (pub) await this.o.onPublicUpdate?.(id, updateId);
    return { incident: await this.get(id), updateId };
  }

  async addAction(
    id: string,
    a: { kind: ActionKind; description: string; owner?: string; dueAt?: number },
    actor: string,
    source?: AuditSource,
  ): Promise<IncidentAction> {
    const now = this.now();
    const description = text(a.description, 'description', 2000, true);
    if (a.owner !== undefined && !ID.test(a.owner)) throw incidentErrors.invalid('owner must be a user id');
    const actionId = crypto.randomUUID();
    await this.o.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('incidents').select('status').where('id', '=', id).executeTakeFirst();
      if (!row) throw incidentErrors.notFound();
      if (row.status === 'resolved') throw incidentErrors.resolved();
      await trx
        .insertInto('incident_actions')
        .values({
          id: actionId,
          incident_id: id,
          kind: a.kind,
          description,
          owner: a.owner ?? null,
          due_at: a.dueAt ?? null,
          state: 'open',
          created_at: now,
          created_by: actor,
          closed_at: null,
          closed_by: null,
          outcome: null,
        })
        .execute();
      await trx.updateTable('incidents').set({ updated_at: now }).where('id', '=', id).execute();
      await this.o.audit.record(trx, {
        action: 'incident.action.add',
        actor,
        outcome: 'success',
        reason: a.kind.toUpperCase(),
        targets: { incident: id, action: actionId },
        ...(source ? { source } : {}),
      });
    });
    return (await this.get(id)).actions.find((x) => x.id === actionId)!;
  }

  async closeAction(
    id: string,
    actionId: string,
    outcome: string | undefined,
    actor: string,
    source?: AuditSource,
  ): Promise<IncidentAction> {
    const now = this.now();
    const out = outcome === undefined ? null : text(outcome, 'outcome', 2000, true);
    await this.o.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('incident_actions')
        .select('state')
        .where('id', '=', actionId)
        .where('incident_id', '=', id)
        .executeTakeFirst();
      if (!row)
        throw (await trx.selectFrom('incidents').select('id').where('id', '=', id).executeTakeFirst())
          ? incidentErrors.actionNotFound()
          : incidentErrors.notFound();
      if (row.state !== 'open') throw incidentErrors.actionClosed();
      await trx
        .updateTable('incident_actions')
        .set({ state: 'closed', closed_at: now, closed_by: actor, outcome: out })
        .where('id', '=', actionId)
        .where('state', '=', 'open')
        .execute();
      await trx.updateTable('incidents').set({ updated_at: now }).where('id', '=', id).execute();
      await this.o.audit.record(trx, {
        action: 'incident.action.close',
        actor,
        outcome: 'success',
        targets: { incident: id, action: actionId },
        ...(source ? { source } : {}),
      });
    });
    return (await this.get(id)).actions.find((x) => x.id === actionId)!;
  }

  /** Replaces what the incident affects (components by name, workspaces and users by id). */
  async setAffected(
    id: string,
    a: Partial<Record<'components' | 'workspaces' | 'users', string[]>>,
    actor: string,
    source?: AuditSource,
  ): Promise<Incident> {
    const now = this.now();
    const kinds: [AffectedKind, string[] | undefined][] = [
      ['component', a.components?.map((c) => text(c, 'component', 64))],
      ['workspace', a.workspaces],
      ['user', a.users],
    ];
    await this.o.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('incidents').select('id').where('id', '=', id).executeTakeFirst();
      if (!row) throw incidentErrors.notFound();
      for (const [kind, refs] of kinds) {
        if (refs === undefined) continue;
        if (refs.length > 10_000) throw incidentErrors.invalid(`too many ${kind}s`);
        for (const r of refs) if (!ID.test(r)) throw incidentErrors.invalid(`${kind} references must be ids`);
        if (kind !== 'component' && refs.length) {
          const known = await (kind === 'workspace' ? this.o.existing.workspaces(refs) : this.o.existing.users(refs));
          if (refs.some((r) => !known.has(r))) throw incidentErrors.invalid(`unknown ${kind} id`);
        }
        await trx.deleteFrom('incident_affected').where('incident_id', '=', id).where('kind', '=', kind).execute();
        for (const r of new Set(refs))
          await trx.insertInto('incident_affected').values({ incident_id: id, kind, ref: r }).execute();
      }
      await trx.updateTable('incidents').set({ updated_at: now }).where('id', '=', id).execute();
      await this.o.audit.record(trx, {
        action: 'incident.affected',
        actor,
        outcome: 'success',
        targets: { incident: id },
        ...(source ? { source } : {}),
      });
    });
    return this.get(id);
  }

  async get(id: string): Promise<Incident> {
    const r = await this.o.db.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw incidentErrors.notFound();
    const [affected, actions, updates] = await Promise.all([
      this.o.db
        .selectFrom('incident_affected')
        .selectAll()
        .where('incident_id', '=', id)
        .orderBy('kind')
        .orderBy('ref')
        .execute(),
      this.o.db
        .selectFrom('incident_actions')
        .selectAll()
        .where('incident_id', '=', id)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
      this.o.db.selectFrom('incident_updates').selectAll().where('incident_id', '=', id).orderBy('id').execute(),
    ]);
    const of = (k: AffectedKind) => affected.filter((x) => x.kind === k).map((x) => x.ref);
    return {
      id: r.id,
      title: r.title,
      severity: r.severity as IncidentSeverity,
      status: r.status as IncidentStatus,
      createdAt: Number(r.created_at),
      createdBy: r.created_by,
      detectedAt: Number(r.detected_at),
      updatedAt: Number(r.updated_at),
      resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
      personalData: Number(r.personal_data) === 1,
      rootCause: r.root_cause,
      breach: r.breach ? (JSON.parse(r.breach) as BreachDetails) : null,
      dora: r.dora ? (JSON.parse(r.dora) as DoraFields) : null,
      authorityNotifiedAt: r.authority_notified_at === null ? null : Number(r.authority_notified_at),
      publicTitle: r.public_title,
      alertId: r.alert_id,
      affected: { components: of('component'), workspaces: of('workspace'), users: of('user') },
      actions: actions.map((a) => ({
        id: a.id,
        kind: a.kind as ActionKind,
        description: a.description,
        owner: a.owner,
        dueAt: a.due_at === null ? null : Number(a.due_at),
        state: a.state as 'open' | 'closed',
        createdAt: Number(a.created_at),
        createdBy: a.created_by,
        closedAt: a.closed_at === null ? null : Number(a.closed_at),
        closedBy: a.closed_by,
        outcome: a.outcome,
      })),
      updates: updates.map((u): IncidentUpdate => ({
        id: Number(u.id),
        at: Number(u.at),
        actor: u.actor,
        status: u.status as IncidentStatus,
        message: u.message,
        public: Number(u.public) === 1,
        publicMessage: u.public_message ? (JSON.parse(u.public_message) as IncidentUpdate['publicMessage']) : null,
      })),
    };
  }

  async list(
    o: { status?: IncidentStatus | 'open'; limit?: number } = {},
  ): Promise<Omit<Incident, 'actions' | 'updates' | 'affected' | 'breach' | 'dora'>[]> {
    let q = this.o.db
      .selectFrom('incidents')
      .selectAll()
      .orderBy('created_at', 'desc')
      .limit(Math.min(o.limit ?? 100, 500));
    if (o.status === 'open') q = q.where('status', '!=', 'resolved');
    else if (o.status) q = q.where('status', '=', o.status);
    return (await q.execute()).map((r) => ({
      id: r.id,
      title: r.title,
      severity: r.severity as IncidentSeverity,
      status: r.status as IncidentStatus,
      createdAt: Number(r.created_at),
      createdBy: r.created_by,
      detectedAt: Number(r.detected_at),
      updatedAt: Number(r.updated_at),
      resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
      personalData: Number(r.personal_data) === 1,
      rootCause: r.root_cause,
      authorityNotifiedAt: r.authority_notified_at === null ? null : Number(r.authority_notified_at),
      publicTitle: r.public_title,
      alertId: r.alert_id,
    }));
  }

  /** The GDPR art. 33 clock of a personal-data breach (null when no personal data is involved). */
  breachClock(i: Pick<Incident, 'personalData' | 'detectedAt' | 'authorityNotifiedAt'>): BreachClock | null {
    if (!i.personalData) return null;
    const deadline = i.detectedAt + BREACH_NOTIFY_MS;
    const now = this.now();
    const n = i.authorityNotifiedAt;
    return {
      detectedAt: i.detectedAt,
      deadline,
      remainingMs: deadline - now,
      notifiedAt: n,
      state: n !== null ? (n <= deadline ? 'notified' : 'notified-late') : now > deadline ? 'overdue' : 'running',
    };
  }

  /** Records that someone exported an incident's report (a read of what may describe personal data). */
  async recordExport(id: string, format: string, actor: string, source?: AuditSource): Promise<void> {
    await this.o.audit.recordNow({
      action: 'incident.export',
      actor,
      outcome: 'success',
      reason: format.toUpperCase(),
      targets: { incident: id },
      ...(source ? { source } : {}),
    });
  }
}

function checkBreach(b: BreachDetails): BreachDetails {
  const out: BreachDetails = {};
  for (const k of ['nature', 'consequences', 'measures', 'contact', 'delayReason'] as const)
    if (b[k] !== undefined) out[k] = text(b[k], k, 5000, true);
  for (const k of ['subjectCategories', 'recordCategories'] as const)
    if (b[k] !== undefined) out[k] = b[k].map((c) => text(c, k, 200));
  for (const k of ['subjectsApprox', 'recordsApprox'] as const) if (b[k] !== undefined) out[k] = b[k];
  return out;
}
