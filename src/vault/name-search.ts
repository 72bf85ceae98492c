import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { VaultSchema } from '../db/index.js';
import { num } from './core.js';

/**
 * The queries of a search through the blind name index (name-index.ts), each bounded whatever the
 * size of the workspace (docs/formats.md "Name search index"). A search's tokens are counted (up
 * to HOLDERS_MAX + 1 index rows each); when its rarest token is held by at most HOLDERS_MAX
 * documents, those are the candidates (`holders`: the token's index rows, each checked for the
 * other tokens and the filters by primary key); otherwise the workspace's live documents are
 * walked newest first until a page holds enough matches (`newestHolding`), which at that density
 * is reached after about limit × documents / HOLDERS_MAX rows. The two costs meet near
 * √(limit × documents): 5,000 index rows is that point for pages of 100 at a million documents.
 * That walk stops after `vault.searchScanRows` documents whatever it found (words each common but
 * rarely together would otherwise walk the whole workspace): the page then holds fewer matches, or
 * none, and a cursor that resumes after the last document looked at.
 */
export const HOLDERS_MAX = 5000;

/** Which documents a search looks at (the listing's filters). */
export interface Scope {
  workspaceId: string;
  /** a folder id, 'root' for the top level, or undefined for the whole workspace */
  folderId?: string | undefined;
  trash: boolean;
}

/** A document found: what ordering and paging need, before its row is read. */
export interface Found {
  id: string;
  createdAt: number;
}

type Db = Kysely<VaultSchema>;

/** The scope's conditions on the documents aliased `d` (the live-documents index's own terms first). */
function inScope(s: Scope): Expression<SqlBool> {
  const folder =
    s.folderId === undefined
      ? sql``
      : s.folderId === 'root'
        ? sql` and d.folder_id is null`
        : sql` and d.folder_id = ${s.folderId}`;
  return sql<SqlBool>`d.workspace_id = ${s.workspaceId} and d.purged_at is null and d.trashed_at ${
    s.trash ? sql`is not null` : sql`is null`
  }${folder}`;
}

/** `document` holds the token (a primary-key probe of the index) */
const holds = (token: string, document: 'd.id' | 'i.document_id' | 'w.id'): Expression<SqlBool> =>
  sql<SqlBool>`exists (select 1 from vault_name_index x where x.token = ${token} and x.document_id = ${sql.ref(document)})`;

/** Tokens with the number of index rows holding each (counted up to HOLDERS_MAX + 1), rarest first. */
export async function countTokens(db: Db, tokens: readonly string[]): Promise<{ token: string; n: number }[]> {
  const counted = await Promise.all(
    tokens.map(async (token) => {
      const r = await db
        .selectFrom((eb) =>
          eb
            .selectFrom('vault_name_index')
            .select('kind')
            .where('token', '=', token)
            .limit(HOLDERS_MAX + 1)
            .as('c'),
        )
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      return { token, n: num(r?.n ?? 0) };
    }),
  );
  return counted.sort((a, b) => a.n - b.n);
}

/**
 * The documents in scope holding every token, from the index rows of `rare` (at most HOLDERS_MAX
 * of them). CROSS JOIN keeps SQLite's planner on that order (index rows outside, documents by
 * primary key inside) instead of walking the workspace; PostgreSQL plans it as an inner join.
 */
export async function holders(db: Db, s: Scope, rare: string, others: readonly string[]): Promise<Found[]> {
  let q = db
    .selectFrom('vault_name_index as i')
    .crossJoin('vault_documents as d')
    .select(['d.id', 'd.created_at'])
    .where('i.token', '=', rare)
    .whereRef('d.id', '=', 'i.document_id')
    .where(inScope(s));
  for (const t of others) q = q.where(holds(t, 'i.document_id'));
  return (await q.execute()).map((r) => ({ id: r.id, createdAt: num(r.created_at) }));
}

/** A page of matches, and where to resume when the walk stopped at its bound before the page was full. */
export interface NewestPage {
  found: Found[];
  /** (created_at, id) of the last document looked at, when the walk stopped at `scanRows` */
  resumeAfter: [number, string] | null;
}

/**
 * A page (limit + 1 rows, to tell whether more follow) of the documents in scope holding every
 * token, newest first, after `after` (created_at, id) or skipping `offset` of them, looking at no
 * more than `scanRows` documents.
 */
export async function newestHolding(
  db: Db,
  s: Scope,
  tokens: readonly string[],
  limit: number,
  from: { after: [number, string] } | { offset: number },
  scanRows: number,
): Promise<NewestPage> {
  let walk = db
    .selectFrom('vault_documents as d')
    .select(['d.id', 'd.created_at'])
    .where(inScope(s))
    .orderBy('d.created_at', 'desc')
    .orderBy('d.id', 'desc');
  if ('after' in from) {
    const [at, id] = from.after;
    walk = walk.where((eb) =>
      eb.or([eb('d.created_at', '<', at), eb.and([eb('d.created_at', '=', at), eb('d.id', '<', id)])]),
    );
  }
  let q = db
    .selectFrom(walk.limit(scanRows).as('w'))
    .select(['w.id', 'w.created_at'])
    .orderBy('w.created_at', 'desc')
    .orderBy('w.id', 'desc')
    .limit(limit + 1);
  for (const t of tokens) q = q.where(holds(t, 'w.id'));
  if ('offset' in from && from.offset > 0) q = q.offset(from.offset);
  const found = (await q.execute()).map((r) => ({ id: r.id, createdAt: num(r.created_at) }));
  if (found.length > limit) return { found, resumeAfter: null };
  // not a full page: did the walk stop at its bound? then resume after the last document it looked at
  const edge = await walk
    .offset(scanRows - 1)
    .limit(1)
    .executeTakeFirst();
  return { found, resumeAfter: edge ? [num(edge.created_at), edge.id] : null };
}
