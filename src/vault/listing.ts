import { iso, num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import { foldForSearch, queryTokens } from './name-index.js';
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
  /** total matches (search only) */
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
 * and its tag up in the blind name index (name-index.ts) and decrypts only what it shows: the
 * matches, sorted by name, when at most SORT_BY_NAME_MAX, else the page, newest first. Until every
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
    .select([
      'id',
      'folder_id',
      'name_enc',
      'tags_enc',
      'head_version',
      'head_size',
      'created_at',
      'updated_at',
      'trashed_at',
    ])
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
    const offset = q.cursor
      ? decodeCursor(
          q.cursor,
          (o): o is { o: number } =>
            typeof o === 'object' &&
            o !== null &&
            Number.isSafeInteger((o as { o: unknown }).o) &&
            (o as { o: number }).o >= 0,
        ).o
      : 0;
    const tokens = (await indexed(core, ws.id)) ? await queryTokens(core.d.fields, ws.id, q) : null;
    let hits: { r: Row; name?: string; tags?: string[] }[];
    let total: number;
    if (tokens === null) {
      // without the index (documents not indexed yet, or a query of punctuation only): every
      // name of the workspace decrypted in memory, a case-insensitive substring
      hits = await scan(core, (await base.execute()) as Row[], q);
      total = hits.length;
    } else {
      // documents holding every token of the query (docs/formats.md "Name search index"): those
      // of its rarest token, each checked for the others by primary key
      const [rare, ...others] = await byRarity(core, tokens);
      let matching = core.db.selectFrom('vault_name_index as i').select('i.document_id').where('i.token', '=', rare!);
      for (const t of others) {
        matching = matching.where((eb) =>
          eb.exists(
            eb
              .selectFrom('vault_name_index as x')
              .select('x.kind')
              .where('x.token', '=', t)
              .whereRef('x.document_id', '=', 'i.document_id'),
          ),
        );
      }
      const found = base.where('id', 'in', matching);
      total = num(
        (
          await found
            .clearSelect()
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirst()
        )?.n ?? 0,
      );
      if (total <= SORT_BY_NAME_MAX) {
        const rows = (await found.execute()) as Row[];
        hits = await Promise.all(rows.map(async (r) => ({ r, name: await core.docName(r.id, r.name_enc) })));
      } else {
        // too many to sort by name without decrypting them all: newest first, by pages
        const rows = (await found
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(q.limit)
          .offset(offset)
          .execute()) as Row[];
        hits = rows.map((r) => ({ r }));
      }
    }
    const byName = total <= SORT_BY_NAME_MAX || tokens === null;
    if (byName) hits.sort((a, b) => a.name!.localeCompare(b.name!) || a.r.id.localeCompare(b.r.id));
    const shown = byName ? hits.slice(offset, offset + q.limit) : hits;
    page = {
      items: await Promise.all(shown.map((h) => item(h.r, h.name, h.tags))),
      next: offset + q.limit < total ? encodeCursor({ o: offset + q.limit }) : null,
      total,
    };
  }
  await core.recordRead(c, q.q !== undefined || q.tag !== undefined ? 'doc.search' : 'doc.list', { workspace: ws.id });
  return page;
}

/** searches that match at most this many documents are sorted by name (their names decrypted); more, newest first */
const SORT_BY_NAME_MAX = 1000;

/** Tokens, the rarest first (counted up to a bound: past it, a token is common enough). */
async function byRarity(core: VaultCore, tokens: string[]): Promise<string[]> {
  if (tokens.length < 2) return tokens;
  const counted = await Promise.all(
    tokens.map(async (t) => {
      const r = await core.db
        .selectFrom((eb) =>
          eb.selectFrom('vault_name_index').select('kind').where('token', '=', t).limit(RARITY_BOUND).as('c'),
        )
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      return { t, n: num(r?.n ?? 0) };
    }),
  );
  return counted.sort((a, b) => a.n - b.n).map((c) => c.t);
}
const RARITY_BOUND = 2000;

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
