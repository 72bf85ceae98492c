import { get } from '../api.js';

/**
 * The auditor's export of the filtered view: every record the filters match (not only the pages
 * shown), read page by page from GET /audit/events (each page audited as `audit.query`), with the
 * user name beside each `user:<id>` actor, saved as CSV or JSON lines by the browser. Bounded at
 * MAX_RECORDS; beyond, the caller says so (narrow the filters, or the full GET /audit/export).
 */
/** one record as GET /audit/events returns it */
export interface AuditRecord {
  seq: number;
  at: string;
  action: string;
  actor: string;
  outcome: string;
  reason: string | null;
  targets: Record<string, string>;
  source: { ip: string | null; userAgent: string | null; requestId: string | null };
  hash: string;
}

export const MAX_RECORDS = 20_000;
const PAGE = 1000;

export type ExportFormat = 'csv' | 'jsonl';

export async function fetchFiltered(
  query: Record<string, string | number | undefined>,
): Promise<{ records: AuditRecord[]; truncated: boolean }> {
  const records: AuditRecord[] = [];
  let cursor: string | undefined;
  do {
    const r = await get<{ events: AuditRecord[]; nextCursor: string | null }>('/audit/events', {
      query: { ...query, limit: PAGE, cursor },
    });
    records.push(...r.events);
    cursor = r.nextCursor ?? undefined;
  } while (cursor && records.length < MAX_RECORDS);
  return { records: records.slice(0, MAX_RECORDS), truncated: !!cursor || records.length > MAX_RECORDS };
}

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break; a leading = + - @ or
 * tab is prefixed with ' so that a spreadsheet never runs a value typed by someone as a formula.
 */
export function csvCell(v: string | number | null | undefined): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const COLUMNS = [
  'seq',
  'at',
  'action',
  'actor',
  'actor_name',
  'outcome',
  'reason',
  'targets',
  'ip',
  'request_id',
  'hash',
] as const;

export function toCsv(records: AuditRecord[], names: Map<string, string>): string {
  const rows = records.map((e) =>
    [
      e.seq,
      e.at,
      e.action,
      e.actor,
      names.get(e.actor) ?? '',
      e.outcome,
      e.reason,
      Object.entries(e.targets)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      e.source?.ip,
      e.source?.requestId,
      e.hash,
    ]
      .map(csvCell)
      .join(','),
  );
  return [COLUMNS.join(','), ...rows].join('\r\n') + '\r\n';
}

export function toJsonl(records: AuditRecord[], names: Map<string, string>): string {
  return records.map((e) => JSON.stringify({ ...e, actorName: names.get(e.actor) ?? null }) + '\n').join('');
}
