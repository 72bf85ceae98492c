import type { Kysely } from 'kysely';
import type { IncidentsSchema } from '../db/index.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import type { IncidentSeverity, IncidentStatus } from './types.js';

const DAY = 86_400_000;

/** what an outsider may read of an incident: its public title, status, public updates, components, times */
export interface PublicIncident {
  id: string;
  title: string;
  severity: IncidentSeverity;
  status: IncidentStatus;
  /** the first public update */
  startedAt: number;
  resolvedAt: number | null;
  components: string[];
  /** oldest first */
  updates: { id: number; at: number; status: IncidentStatus; message: { en?: string; fr?: string } }[];
}

/** a banner a user has not acknowledged yet: the newest public update of an incident that affects them */
export interface Banner {
  incidentId: string;
  updateId: number;
  title: string;
  severity: IncidentSeverity;
  status: IncidentStatus;
  at: number;
  message: { en?: string; fr?: string };
}

export interface IncidentNoticesOptions {
  db: Kysely<IncidentsSchema>;
  audit: Auditor;
  clock: Clock;
  /** the ids of the members of these workspaces (the access module) */
  memberIds(workspaceIds: readonly string[]): Promise<Set<string>>;
  /** a resolved incident stays on the status page and in banners this long (default 30 days) */
  keepResolvedMs?: number;
}

export const noticeErrors = {
  noBanner: () =>
    new AppError('INCIDENT_NOT_FOUND', 'no such incident notice for you', { httpStatus: 404, exitCode: 1 }),
};

/**
 * What the people concerned are told of incidents (docs/incidents.md "Telling the people
 * concerned"): only public updates, under the public title; never the internal message, the root
 * cause, who is affected or whether personal data is involved. An incident affects a user when
 * it names them, names a workspace they belong to, or names neither users nor workspaces (then
 * it affects everyone).
 */
export class IncidentNotices {
  constructor(private readonly o: IncidentNoticesOptions) {}

  private get keepMs(): number {
    return this.o.keepResolvedMs ?? 30 * DAY;
  }

  /** incidents with a public title and at least one public update, newest first; resolved ones for `keepResolvedMs` (or `pastDays`) */
  async published(o: { pastMs?: number; limit?: number } = {}): Promise<PublicIncident[]> {
    const since = this.o.clock.nowMs() - (o.pastMs ?? this.keepMs);
    const rows = await this.o.db
      .selectFrom('incidents')
      .select(['id', 'public_title', 'severity', 'status', 'resolved_at'])
      .where('public_title', 'is not', null)
      .where('status', '!=', 'draft')
      .where((eb) => eb.or([eb('resolved_at', 'is', null), eb('resolved_at', '>=', since)]))
      .orderBy('created_at', 'desc')
      .limit(o.limit ?? 50)
      .execute();
    if (!rows.length) return [];
    const ids = rows.map((r) => r.id);
    const [updates, components] = await Promise.all([
      this.o.db
        .selectFrom('incident_updates')
        .select(['id', 'incident_id', 'at', 'status', 'public_message'])
        .where('incident_id', 'in', ids)
        .where('public', '=', 1)
        .orderBy('id')
        .execute(),
      this.o.db
        .selectFrom('incident_affected')
        .select(['incident_id', 'ref'])
        .where('incident_id', 'in', ids)
        .where('kind', '=', 'component')
        .orderBy('ref')
        .execute(),
    ]);
    return rows.flatMap((r): PublicIncident[] => {
      const ups = updates
        .filter((u) => u.incident_id === r.id)
        .map((u) => ({
          id: Number(u.id),
          at: Number(u.at),
          status: u.status as IncidentStatus,
          message: JSON.parse(u.public_message ?? '{}') as { en?: string; fr?: string },
        }));
      if (!ups.length) return [];
      return [
        {
          id: r.id,
          title: r.public_title!,
          severity: r.severity as IncidentSeverity,
          status: r.status as IncidentStatus,
          startedAt: ups[0]!.at,
          resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
          components: components.filter((c) => c.incident_id === r.id).map((c) => c.ref),
          updates: ups,
        },
      ];
    });
  }

  /** the user ids an incident affects, or 'everyone' */
  async audience(incidentId: string): Promise<Set<string> | 'everyone'> {
    const rows = await this.o.db
      .selectFrom('incident_affected')
      .select(['kind', 'ref'])
      .where('incident_id', '=', incidentId)
      .where('kind', 'in', ['user', 'workspace'])
      .execute();
    if (!rows.length) return 'everyone';
    const users = new Set(rows.filter((r) => r.kind === 'user').map((r) => r.ref));
    const ws = rows.filter((r) => r.kind === 'workspace').map((r) => r.ref);
    if (ws.length) for (const id of await this.o.memberIds(ws)) users.add(id);
    return users;
  }

  /** the banners this user has not acknowledged (the newest public update of each incident affecting them) */
  async banners(userId: string): Promise<Banner[]> {
    const pub = await this.published();
    if (!pub.length) return [];
    const acks = await this.o.db
      .selectFrom('incident_acks')
      .select(['incident_id', 'update_id'])
      .where('user_id', '=', userId)
      .where(
        'incident_id',
        'in',
        pub.map((p) => p.id),
      )
      .execute();
    const acked = new Map(acks.map((a) => [a.incident_id, Number(a.update_id)]));
    const out: Banner[] = [];
    for (const p of pub) {
      const last = p.updates.at(-1)!;
      if ((acked.get(p.id) ?? 0) >= last.id) continue;
      const who = await this.audience(p.id);
      if (who !== 'everyone' && !who.has(userId)) continue;
      out.push({
        incidentId: p.id,
        updateId: last.id,
        title: p.title,
        severity: p.severity,
        status: p.status,
        at: last.at,
        message: last.message,
      });
    }
    return out;
  }

  /**
   * The user acknowledges a banner (up to `updateId`: a newer public update shows it again).
   * Audited `incident.ack`; 404 for a banner this user is not shown.
   */
  async acknowledge(
    incidentId: string,
    updateId: number,
    userId: string,
    actor: string,
    source?: AuditSource,
  ): Promise<void> {
    const b = (await this.banners(userId)).find((x) => x.incidentId === incidentId);
    if (!b || updateId > b.updateId) throw noticeErrors.noBanner();
    const now = this.o.clock.nowMs();
    await this.o.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('incident_acks')
        .where('incident_id', '=', incidentId)
        .where('user_id', '=', userId)
        .execute();
      await trx
        .insertInto('incident_acks')
        .values({ incident_id: incidentId, user_id: userId, update_id: updateId, at: now })
        .execute();
      await this.o.audit.record(trx, {
        action: 'incident.ack',
        actor,
        outcome: 'success',
        targets: { incident: incidentId, update: String(updateId) },
        ...(source ? { source } : {}),
      });
    });
  }
}
