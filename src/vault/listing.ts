import { iso, num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import type { VaultCaller } from './types.js';

export interface ListQuery {
  /** a folder id, 'root' for the top level, or undefined for the whole workspace */
  folderId?: string;
  /** case-insensitive substring of the name */
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

const fold = (s: string) => s.normalize('NFKC').toLocaleLowerCase();

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
 * Lists or searches a workspace. Names and tags are encrypted, so a search decrypts them in
 * memory (the workspace's field key is cached: no HSM call per name) and filters there; a plain
 * listing pages by creation time and decrypts only the page. Audited as one read of the workspace.
 */
export async function listDocuments(core: VaultCore, c: VaultCaller, workspaceId: string, q: ListQuery): Promise<ListPage> {
  const ws = await core.workspace(c, workspaceId, 'viewer', 'doc.list');
  if (q.folderId !== undefined && q.folderId !== 'root') await core.folderIn(ws.id, q.folderId);
  let base = core.db
    .selectFrom('vault_documents')
    .select(['id', 'folder_id', 'name_enc', 'tags_enc', 'head_version', 'head_size', 'created_at', 'updated_at', 'trashed_at'])
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
    let sel = base.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
    if (q.cursor) {
      const [at, id] = decodeCursor(q.cursor, (o): o is [number, string] => Array.isArray(o) && typeof o[0] === 'number' && typeof o[1] === 'string');
      sel = sel.where((eb) => eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', id)])]));
    }
    const rows = (await sel.execute()) as Row[];
    const more = rows.length > q.limit;
    const shown = rows.slice(0, q.limit);
    const last = shown[shown.length - 1];
    page = { items: await Promise.all(shown.map((r) => item(r))), next: more && last ? encodeCursor([num(last.created_at), last.id]) : null, total: null };
  } else {
    const rows = (await base.execute()) as Row[];
    const needle = q.q !== undefined ? fold(q.q) : undefined;
    const tag = q.tag !== undefined ? fold(q.tag) : undefined;
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
            if (!tags.some((t) => fold(t) === tag)) return;
          }
          hits.push(tags ? { r, name, tags } : { r, name });
        }),
      );
    }
    hits.sort((a, b) => a.name.localeCompare(b.name) || a.r.id.localeCompare(b.r.id));
    const offset = q.cursor ? decodeCursor(q.cursor, (o): o is { o: number } => typeof o === 'object' && o !== null && Number.isSafeInteger((o as { o: unknown }).o) && (o as { o: number }).o >= 0).o : 0;
    const shown = hits.slice(offset, offset + q.limit);
    page = {
      items: await Promise.all(shown.map((h) => item(h.r, h.name, h.tags))),
      next: offset + q.limit < hits.length ? encodeCursor({ o: offset + q.limit }) : null,
      total: hits.length,
    };
  }
  await core.recordRead(c, q.q !== undefined || q.tag !== undefined ? 'doc.search' : 'doc.list', { workspace: ws.id });
  return page;
}

/** Usage and quota of a workspace. */
export async function usage(core: VaultCore, c: VaultCaller, workspaceId: string): Promise<{ usedBytes: number; quotaBytes: number | null; documents: number }> {
  const ws = await core.workspace(c, workspaceId, 'viewer', 'workspace.usage');
  const used = await core.usedBytes(ws.id);
  const n = await core.db.selectFrom('vault_documents').select((eb) => eb.fn.countAll().as('n')).where('workspace_id', '=', ws.id).where('purged_at', 'is', null).executeTakeFirst();
  const quota = core.quotaOf(ws);
  return { usedBytes: used, quotaBytes: quota > 0 ? quota : null, documents: num(n?.n ?? 0) };
}
