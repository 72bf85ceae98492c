import type { WorkspaceRole } from '../access/index.js';
import type { VaultCore } from './core.js';
import type { VaultCaller } from './types.js';

/** Where a document lives, and the caller's role there. */
export interface DocumentPlace {
  id: string;
  workspaceId: string;
  folderId: string | null;
  role: WorkspaceRole;
}

/**
 * A document the caller may see (any role), with its place: the same 404 as every other document
 * route for a missing document, a foreign one, or an admin who is not a member (denial audited
 * under `action`). Nothing is decrypted.
 */
export async function locateDocument(
  core: VaultCore,
  c: VaultCaller,
  id: string,
  action: string,
): Promise<DocumentPlace> {
  const { doc, ws } = await core.document(c, id, 'viewer', action);
  return { id: doc.id, workspaceId: doc.workspace_id, folderId: doc.folder_id, role: ws.role };
}

/** Ids only, no names (for the auditor, who holds no membership): a document's place, or null. */
export async function documentPlace(
  core: VaultCore,
  id: string,
): Promise<{ workspaceId: string; folderId: string | null } | null> {
  const d = await core.db
    .selectFrom('vault_documents')
    .select(['workspace_id', 'folder_id'])
    .where('id', '=', id)
    .where('purged_at', 'is', null)
    .executeTakeFirst();
  return d ? { workspaceId: d.workspace_id, folderId: d.folder_id } : null;
}

/**
 * Ids only: a folder, every folder under it and every document (trash included) they hold, or
 * null when the folder does not exist.
 */
export async function folderTree(
  core: VaultCore,
  folderId: string,
): Promise<{ workspaceId: string; folderIds: string[]; documentIds: string[] } | null> {
  const root = await core.db
    .selectFrom('vault_folders')
    .select(['id', 'workspace_id'])
    .where('id', '=', folderId)
    .executeTakeFirst();
  if (!root) return null;
  const all = await core.db
    .selectFrom('vault_folders')
    .select(['id', 'parent_id'])
    .where('workspace_id', '=', root.workspace_id)
    .execute();
  const children = new Map<string, string[]>();
  for (const f of all)
    if (f.parent_id !== null) children.set(f.parent_id, [...(children.get(f.parent_id) ?? []), f.id]);
  const folderIds: string[] = [];
  const todo = [root.id];
  while (todo.length) {
    const f = todo.pop()!;
    folderIds.push(f);
    todo.push(...(children.get(f) ?? []));
  }
  const documentIds: string[] = [];
  for (let i = 0; i < folderIds.length; i += 500) {
    const rows = await core.db
      .selectFrom('vault_documents')
      .select('id')
      .where('folder_id', 'in', folderIds.slice(i, i + 500))
      .where('purged_at', 'is', null)
      .execute();
    documentIds.push(...rows.map((r) => r.id));
  }
  return { workspaceId: root.workspace_id, folderIds, documentIds };
}

/** Ids only: the workspace of a folder, or null. */
export async function folderPlace(core: VaultCore, id: string): Promise<{ workspaceId: string } | null> {
  const f = await core.db.selectFrom('vault_folders').select('workspace_id').where('id', '=', id).executeTakeFirst();
  return f ? { workspaceId: f.workspace_id } : null;
}
