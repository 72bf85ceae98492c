import { sql, type Kysely } from 'kysely';
import type { AuditSchema, SharedDb } from '../db/index.js';
import { rowToRecord } from './db/rows.js';
import { recordToJson } from './export-format.js';
import { decodeCursor, encodeCursor, type AuditPage } from './query.js';

/**
 * What a history or an access report is about: events naming one of `ids` as a target of `kind`,
 * and (`sharing`) the membership changes of a workspace (who was given or lost access to it).
 * `actors` keeps only the events of these actor ids (a member's own actions). Times in ms.
 */
export interface AboutQuery {
  targets: readonly { kind: string; ids: readonly string[] }[];
  sharing?: { workspace: string };
  actors?: readonly string[];
  /** also every event done by one of these actor ids, whatever it names (a person's own trail) */
  byActors?: readonly string[];
  /** inclusive */
  from?: number;
  /** exclusive */
  to?: number;
}

/** One line of an access report: how often an actor did an action with an outcome, first and last time. */
export interface AboutSummaryRow {
  actor: string;
  action: string;
  outcome: string;
  count: number;
  first: string;
  last: string;
}

/** Kept under SQLite's and PostgreSQL's limits on bound parameters. */
export const ABOUT_MAX_IDS = 5_000;
const MAX_IDS = ABOUT_MAX_IDS;

function scoped(db: Kysely<AuditSchema>, q: AboutQuery) {
  if (q.targets.reduce((n, t) => n + t.ids.length, 0) + (q.byActors?.length ?? 0) > MAX_IDS)
    throw new RangeError(`at most ${MAX_IDS} targets per query`);
  let s = db.selectFrom('audit_events');
  const targets = q.targets.filter((t) => t.ids.length > 0);
  s = s.where((eb) => {
    const byTarget = eb.or(
      targets.map((t) =>
        eb(
          'seq',
          'in',
          eb
            .selectFrom('audit_targets')
            .select('audit_targets.seq')
            .where('audit_targets.kind', '=', t.kind)
            .where('audit_targets.id', 'in', [...t.ids]),
        ),
      ),
    );
    const byActor = q.byActors?.length ? [eb('actor', 'in', [...q.byActors])] : [];
    if (!q.sharing) return byActor.length ? eb.or([byTarget, ...byActor]) : byTarget;
    const ws = q.sharing.workspace;
    const bySharing = eb.and([
      eb('action', '>=', 'workspace.member.'),
      eb('action', '<', 'workspace.member/'),
      eb(
        'seq',
        'in',
        eb
          .selectFrom('audit_targets')
          .select('audit_targets.seq')
          .where('audit_targets.kind', '=', 'workspace')
          .where('audit_targets.id', '=', ws),
      ),
    ]);
    return eb.or([byTarget, bySharing, ...byActor]);
  });
  if (q.actors !== undefined) s = s.where('actor', 'in', q.actors.length ? [...q.actors] : ['\u0000none']);
  if (q.from !== undefined) s = s.where('at', '>=', q.from);
  if (q.to !== undefined) s = s.where('at', '<', q.to);
  return s;
}

/** The events about a target, newest first, keyset-paginated on seq like `queryEvents`. */
export async function eventsAbout(
  db: SharedDb,
  q: AboutQuery,
  page: { limit: number; cursor?: string | undefined },
): Promise<AuditPage> {
  const limit = Math.max(1, Math.min(1000, Math.floor(page.limit)));
  let s = scoped(db, q).selectAll();
  if (page.cursor !== undefined) s = s.where('seq', '<', decodeCursor(page.cursor));
  const rows = await s
    .orderBy('seq', 'desc')
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const events = rows.slice(0, limit).map((r) => recordToJson(rowToRecord(r)));
  return { events, nextCursor: more ? encodeCursor(events[events.length - 1]!.seq) : null };
}

/** Counts of the events about a target per (actor, action, outcome), with the first and last time. */
export async function summaryAbout(db: SharedDb, q: AboutQuery): Promise<{ total: number; rows: AboutSummaryRow[] }> {
  const rows = await scoped(db, q)
    .select(['actor', 'action', 'outcome'])
    .select((eb) => [
      eb.fn.countAll<number | string>().as('n'),
      eb.fn.min<number | string>('at').as('first'),
      eb.fn.max<number | string>('at').as('last'),
    ])
    .groupBy(['actor', 'action', 'outcome'])
    .orderBy(sql`count(*)`, 'desc')
    .orderBy('actor')
    .orderBy('action')
    .execute();
  const out = rows.map((r) => ({
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    count: Number(r.n),
    first: new Date(Number(r.first)).toISOString(),
    last: new Date(Number(r.last)).toISOString(),
  }));
  return { total: out.reduce((a, r) => a + r.count, 0), rows: out };
}
