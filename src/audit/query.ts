import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import { AppError } from '../shared/errors.js';
import { rowToRecord } from './db/rows.js';
import { recordToJson, type ExportedRecord } from './export-format.js';

/** Filters of the auditor's query (all optional, combined with AND). Times in ms since the epoch. */
export interface AuditFilter {
  actor?: string;
  /** exact action, or a prefix ending in `.*` (e.g. `auth.*`) */
  action?: string;
  /** an id among the event's targets */
  target?: string;
  /** restricts `target` to one kind (e.g. `document`) */
  targetKind?: string;
  outcome?: 'success' | 'failure' | 'denied';
  /** inclusive */
  from?: number;
  /** exclusive */
  to?: number;
}

export interface AuditPage {
  events: ExportedRecord[];
  /** pass back as `cursor` for the next (older) page; null at the end */
  nextCursor: string | null;
}

const badCursor = () => new AppError('BAD_CURSOR', 'invalid pagination cursor', { httpStatus: 400, exitCode: 2 });

export const encodeCursor = (seq: number) => Buffer.from(`s${seq}`, 'utf8').toString('base64url');
export function decodeCursor(c: string): number {
  const m = /^s(\d{1,15})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw badCursor();
  return Number(m[1]);
}

/**
 * The auditor's query: newest first, keyset-paginated on seq (stable while records are appended).
 * Uses the indexes on (actor, at), (action, at), at, and audit_targets(id, seq).
 */
export async function queryEvents(
  db: Kysely<AuditSchema>,
  f: AuditFilter,
  page: { limit: number; cursor?: string | undefined },
): Promise<AuditPage> {
  const limit = Math.max(1, Math.min(1000, Math.floor(page.limit)));
  let q = db.selectFrom('audit_events').selectAll();
  if (page.cursor !== undefined) q = q.where('seq', '<', decodeCursor(page.cursor));
  if (f.actor !== undefined) q = q.where('actor', '=', f.actor);
  if (f.action !== undefined) {
    if (f.action.endsWith('.*')) {
      const prefix = f.action.slice(0, -1); // keeps the dot
      q = q.where('action', '>=', prefix).where('action', '<', prefix.slice(0, -1) + '/'); // '/' follows '.' in ASCII
    } else q = q.where('action', '=', f.action);
  }
  if (f.outcome !== undefined) q = q.where('outcome', '=', f.outcome);
  if (f.from !== undefined) q = q.where('at', '>=', f.from);
  if (f.to !== undefined) q = q.where('at', '<', f.to);
  if (f.target !== undefined) {
    const target = f.target;
    const kind = f.targetKind;
    q = q.where('seq', 'in', (eb) => {
      let s = eb.selectFrom('audit_targets').select('audit_targets.seq').where('audit_targets.id', '=', target);
      if (kind !== undefined) s = s.where('audit_targets.kind', '=', kind);
      return s;
    });
  }
  const rows = await q
    .orderBy('seq', 'desc')
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const events = rows.slice(0, limit).map((r) => recordToJson(rowToRecord(r)));
  return { events, nextCursor: more ? encodeCursor(events[events.length - 1]!.seq) : null };
}
