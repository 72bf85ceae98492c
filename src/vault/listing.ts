import { iso, num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import { foldForSearch, queryTokens } from './name-index.js';
import { HOLDERS_MAX, countTokens, holders, newestHolding, type Found, type Scope } from './name-search.js';
import type { VaultCaller } from './types.js';

export interface ListQuery {
  /** a folder id, 'root' for the top level, or undefined for the whole workspace */
  folderId?: string;
  /** words, each a prefix of a word of the name (case- and accent-insensitive) */
  q?: string;
  /** exact tag (case-insensitive) */
  tag?: string;
  /** list the trash instead of live documents */
  trash?: boolean;
  limit: number;
  cursor?: string;
}

export interface ListItem {
  id: string;
  folderId: string | null;
  name: string;
  tags: string[];
  version: number;
  size: number;
  createdAt: string;
  updatedAt: string;
  trashedAt: string | null;
}

export interface ListPage {
  items: ListItem[];
  /** pass back as `cursor` for the next page; null at the end */
  next: string | null;
  /** total matches (search only; null when not counted: src/vault/name-search.ts) */
  total: number | null;
}

const fold = foldForSearch;

const encodeCursor = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
function decodeCursor<T>(s: string, valid: (o: unknown) => o is T): T {
  try {
    const o = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (valid(o)) return o;
  } catch {
    /* fall through */
  }
  throw vaultErrors.invalidInput('invalid cursor');
}

const COLUMNS = [
  'id',
  'folder_id',
  'name_enc',
  'tags_enc',
  'head_version',
  'head_size',
  'created_at',
  'updated_at',
  'trashed_at',
] as const;
type Row = {
  id: string;
  folder_id: string | null;
  name_enc: string;
  tags_enc: string | null;
  head_version: number;
  head_size: number;
  created_at: number;
  updated_at: number;
  trashed_at: number | null;
};

/**
 * Lists or searches a workspace. A plain listing pages by creation time and decrypts only the
 * page. A search looks its words (each a word prefix of the name, case- and accent-insensitive)
 * and its tag up in the blind name index (name-index.ts, name-search.ts) and decrypts only what
 * it shows: the matches, sorted by name, when at most SORT_BY_NAME_MAX, else the page, newest
 * first (uncounted when every word is held by more than HOLDERS_MAX documents). Until every
 * document of the workspace is indexed, it decrypts every name in memory instead (substring).
 * Audited as one read of the workspace.
 */
export async function listDocuments(
  core: VaultCore,
  c: VaultCaller,
  workspaceId: string,
  q: ListQuery,
): Promise<ListPage> {
  const ws = await core.workspace(c, workspaceId, 'viewer', 'doc.list');
  if (q.folderId !== undefined && q.folderId !== 'root') await core.folderIn(ws.id, q.folderId);
  let base = core.db
    .selectFrom('vault_documents')
    .select(COLUMNS)
    .where('workspace_id', '=', ws.id)
    .where('purged_at', 'is', null)
    .where('trashed_at', q.trash ? 'is not' : 'is', null);
  if (q.folderId === 'root') base = base.where('folder_id', 'is', null);
  else if (q.folderId !== undefined) base = base.where('folder_id', '=', q.folderId);

  const item = async (r: Row, name?: string, tags?: string[]): Promise<ListItem> => ({
    id: r.id,
    folderId: r.folder_id,
    name: name ?? (await core.docName(r.id, r.name_enc)),
    tags: tags ?? (await core.docTags(r.id, r.tags_enc)),
    version: num(r.head_version),
    size: num(r.head_size),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    trashedAt: iso(r.trashed_at),
  });

  let page: ListPage;
  if (q.q === undefined && q.tag === undefined) {
    let sel = base
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    if (q.cursor) {
      const [at, id] = decodeCursor(
        q.cursor,
        (o): o is [number, string] => Array.isArray(o) && typeof o[0] === 'number' && typeof o[1] === 'string',
      );
      sel = sel.where((eb) =>
        eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', id)])]),
      );
    }
    const rows = (await sel.execute()) as Row[];
    const more = rows.length > q.limit;
    const shown = rows.slice(0, q.limit);
    const last = shown[shown.length - 1];
    page = {
      items: await Promise.all(shown.map((r) => item(r))),
      next: more && last ? encodeCursor([num(last.created_at), last.id]) : null,
      total: null,
    };
  } else {
    const cur: SearchCursor = q.cursor ? decodeCursor(q.cursor, isSearchCursor) : { o: 0 };
    const tokens = (await indexed(core, ws.id)) ? await queryTokens(core.d.fields, ws.id, q) : null;
    if (tokens === null) {
      // without the index (documents not indexed yet, or a query of punctuation only): every
      // name of the workspace decrypted in memory, a case-insensitive substring, sorted by name
      const hits = await scan(core, (await base.execute()) as Row[], q);
      hits.sort((a, b) => byName(a.name, a.r.id, b.name, b.r.id));
      page = await offsetPage(hits, 'o' in cur ? cur.o : 0, q.limit, (h) => item(h.r, h.name, h.tags));
    } else {
      const scope: Scope = { workspaceId: ws.id, folderId: q.folderId, trash: q.trash ?? false };
      const [rare, ...others] = await countTokens(core.db, tokens);
      if (rare!.n <= HOLDERS_MAX) {
        // few enough to count and order them all (docs/formats.md "Name search index")
        const found = await holders(
          core.db,
          scope,
          rare!.token,
          others.map((o) => o.token),
        );
        if (found.length <= SORT_BY_NAME_MAX) {
          const rows = await rowsById(core, found);
          const named = await Promise.all(rows.map(async (r) => ({ r, name: await core.docName(r.id, r.name_enc) })));
          named.sort((a, b) => byName(a.name, a.r.id, b.name, b.r.id));
          page = await offsetPage(named, 'o' in cur ? cur.o : 0, q.limit, (h) => item(h.r, h.name));
        } else {
          // too many to sort by name without decrypting them all: newest first
          found.sort(newestFirst);
          const start = 'o' in cur ? cur.o : olderThan(found, cur.k);
          const shown = await rowsById(core, found.slice(start, start + q.limit));
          page = {
            items: await Promise.all(shown.map((r) => item(r))),
            next: start + q.limit < found.length ? encodeCursor({ o: start + q.limit }) : null,
            total: found.length,
          };
        }
      } else {
        // every word held by many documents: newest first, by pages, not counted
        const { found, resumeAfter } = await newestHolding(
          core.db,
          scope,
          tokens,
          q.limit,
          'k' in cur ? { after: cur.k } : { offset: cur.o },
          core.d.config.searchScanRows,
        );
        const shown = found.slice(0, q.limit);
        const last = shown[shown.length - 1];
        page = {
          items: await Promise.all((await rowsById(core, shown)).map((r) => item(r))),
          next:
            found.length > q.limit && last
              ? encodeCursor({ k: [last.createdAt, last.id] })
              : resumeAfter
                ? encodeCursor({ k: resumeAfter })
                : null,
          total: null,
        };
      }
    }
  }
  await core.recordRead(c, q.q !== undefined || q.tag !== undefined ? 'doc.search' : 'doc.list', { workspace: ws.id });
  return page;
}

/** searches that match at most this many documents are sorted by name (their names decrypted); more, newest first */
const SORT_BY_NAME_MAX = 1000;

/** A search's cursor: an offset in its ordered matches, or (uncounted searches) the last one shown. */
type SearchCursor = { o: number } | { k: [number, string] };
const isSearchCursor = (o: unknown): o is SearchCursor => {
  if (typeof o !== 'object' || o === null) return false;
  const c = o as { o?: unknown; k?: unknown };
  if ('o' in c) return Number.isSafeInteger(c.o) && (c.o as number) >= 0;
  return Array.isArray(c.k) && c.k.length === 2 && Number.isSafeInteger(c.k[0]) && typeof c.k[1] === 'string';
};

const byName = (a: string, aId: string, b: string, bId: string) => a.localeCompare(b) || aId.localeCompare(bId);
const newestFirst = (a: Found, b: Found) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
/** position of the first match after `k` (newest first) */
const olderThan = (found: readonly Found[], k: [number, string]): number => {
  const i = found.findIndex((f) => newestFirst({ createdAt: k[0], id: k[1] }, f) < 0);
  return i < 0 ? found.length : i;
};

/** A page of ordered, counted matches from an offset. */
async function offsetPage<H>(hits: H[], offset: number, limit: number, item: (h: H) => Promise<ListItem>) {
  return {
    items: await Promise.all(hits.slice(offset, offset + limit).map(item)),
    next: offset + limit < hits.length ? encodeCursor({ o: offset + limit }) : null,
    total: hits.length,
  };
}

/** The rows of documents found, in their order (by primary key, chunks under any dialect's bound-parameter limit). */
async function rowsById(core: VaultCore, found: readonly Found[]): Promise<Row[]> {
  const byId = new Map<string, Row>();
  for (let i = 0; i < found.length; i += 500) {
    const rows = (await core.db
      .selectFrom('vault_documents')
      .select(COLUMNS)
      .where(
        'id',
        'in',
        found.slice(i, i + 500).map((f) => f.id),
      )
      .execute()) as Row[];
    for (const r of rows) byId.set(r.id, r);
  }
  return found.flatMap((f) => byId.get(f.id) ?? []);
}

/** Whether every live document of the workspace is in the name index (the vault.index-names job indexes older ones). */
async function indexed(core: VaultCore, workspaceId: string): Promise<boolean> {
  const missing = await core.db
    .selectFrom('vault_documents')
    .select('id')
    .where('workspace_id', '=', workspaceId)
    .where('name_index', 'is', null)
    .where('purged_at', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return missing === undefined;
}

/** A search without the index: names (and tags) decrypted in memory, in slices. */
async function scan(core: VaultCore, rows: Row[], q: ListQuery): Promise<{ r: Row; name: string; tags?: string[] }[]> {
  const needle = q.q !== undefined ? fold(q.q) : undefined;
  const tag = q.tag !== undefined ? foldForSearch(q.tag) : undefined;
  const hits: { r: Row; name: string; tags?: string[] }[] = [];
  // in slices: bounded concurrency and memory whatever the number of documents
  for (let i = 0; i < rows.length; i += 512) {
    await Promise.all(
      rows.slice(i, i + 512).map(async (r) => {
        if (tag !== undefined && r.tags_enc === null) return;
        const name = await core.docName(r.id, r.name_enc);
        if (needle !== undefined && !fold(name).includes(needle)) return;
        let tags: string[] | undefined;
        if (tag !== undefined) {
          tags = await core.docTags(r.id, r.tags_enc);
          if (!tags.some((t) => foldForSearch(t) === tag)) return;
        }
        hits.push(tags ? { r, name, tags } : { r, name });
      }),
    );
  }
  return hits;
}

/** Usage and quota of a workspace. */
export async function usage(
  core: VaultCore,
  c: VaultCaller,
  workspaceId: string,
): Promise<{ usedBytes: number; quotaBytes: number | null; documents: number }> {
  const ws = await core.workspace(c, workspaceId, 'viewer', 'workspace.usage');
  const used = await core.usedBytes(ws.id);
  const n = await core.db
    .selectFrom('vault_documents')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('workspace_id', '=', ws.id)
    .where('purged_at', 'is', null)
    .executeTakeFirst();
  const quota = core.quotaOf(ws);
  return { usedBytes: used, quotaBytes: quota > 0 ? quota : null, documents: num(n?.n ?? 0) };
}
