import type { Kysely, Selectable } from 'kysely';
import type { AuditSchema } from '../../db/index.js';
import type { AuditTables } from '../tables.js';
import type { AuditRecord } from '../canonical.js';

export type EventRow = Selectable<AuditTables['audit_events']>;

/** Stored row → record. Numbers come back as strings from PostgreSQL's bigint: converted here. */
export function rowToRecord(r: EventRow): AuditRecord {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: r.actor,
    action: r.action,
    outcome: r.outcome as AuditRecord['outcome'],
    reason: r.reason,
    targets: r.targets === null ? [] : (JSON.parse(r.targets) as [string, string][]),
    sourceIp: r.source_ip,
    userAgent: r.user_agent,
    requestId: r.request_id,
    hash: r.hash,
  };
}

export function recordToRow(r: AuditRecord): EventRow {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    reason: r.reason,
    targets: r.targets.length ? JSON.stringify(r.targets) : null,
    source_ip: r.sourceIp,
    user_agent: r.userAgent,
    request_id: r.requestId,
    hash: r.hash,
  };
}

/**
 * Reads records in seq order in pages (constant memory for any trail size): `afterSeq` exclusive,
 * up to `limit` records.
 */
export async function readAfter(
  db: Kysely<AuditSchema>,
  afterSeq: number,
  limit: number,
  upToSeq?: number,
): Promise<AuditRecord[]> {
  let q = db.selectFrom('audit_events').selectAll().where('seq', '>', afterSeq).orderBy('seq', 'asc').limit(limit);
  if (upToSeq !== undefined) q = q.where('seq', '<=', upToSeq);
  return (await q.execute()).map(rowToRecord);
}

/**
 * Async iterator over every record after `afterSeq`, in seq order, page by page. Yields to the
 * event loop between pages: SQLite calls are synchronous, and a long verification or export must
 * not stall the requests the appliance is serving.
 */
export async function* iterateRecords(
  db: Kysely<AuditSchema>,
  afterSeq = 0,
  pageSize = 5000,
  upToSeq?: number,
): AsyncGenerator<AuditRecord> {
  let after = afterSeq;
  for (;;) {
    const page = await readAfter(db, after, pageSize, upToSeq);
    for (const r of page) yield r;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.seq;
    await new Promise<void>((r) => setImmediate(r));
  }
}

export async function readHead(db: Kysely<AuditSchema>): Promise<{ seq: number; hash: string } | undefined> {
  const h = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  return h ? { seq: Number(h.seq), hash: h.hash } : undefined;
}
