import crypto from 'node:crypto';
import { ctx, iso, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import { checkName } from './names.js';
import type { VaultCaller } from './types.js';

export interface FolderInfo {
  id: string;
  workspaceId: string;
  parentId: string | null;
  name: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

type FolderRow = {
  id: string;
  workspace_id: string;
  parent_id: string | null;
  name_enc: string;
  created_at: number;
  created_by: string;
  updated_at: number;
};

async function info(core: VaultCore, f: FolderRow): Promise<FolderInfo> {
  return {
    id: f.id,
    workspaceId: f.workspace_id,
    parentId: f.parent_id,
    name: await core.decrypt(f.name_enc, ctx.folderName(f.id)),
    createdAt: iso(f.created_at)!,
    createdBy: f.created_by,
    updatedAt: iso(f.updated_at)!,
  };
}

export async function createFolder(
  core: VaultCore,
  c: VaultCaller,
  workspaceId: string,
  name: string,
  parentId: string | null,
): Promise<FolderInfo> {
  const ws = await core.workspace(c, workspaceId, 'editor', 'folder.create');
  const clean = checkName(name);
  if (parentId !== null) await core.folderIn(ws.id, parentId);
  const id = crypto.randomUUID();
  const nameEnc = await core.encrypt(ws.id, clean, ctx.folderName(id));
  const now = core.now();
  const row = {
    id,
    workspace_id: ws.id,
    parent_id: parentId,
    name_enc: nameEnc,
    created_at: now,
    created_by: c.actor.id,
    updated_at: now,
  };
  await core.db.transaction().execute(async (trx) => {
    await trx.insertInto('vault_folders').values(row).execute();
    await core.recordIn(trx, c, 'folder.create', { workspace: ws.id, folder: id });
  });
  return {
    id,
    workspaceId: ws.id,
    parentId,
    name: clean,
    createdAt: iso(now)!,
    createdBy: c.actor.id,
    updatedAt: iso(now)!,
  };
}

/** Folders of a workspace under `parentId` (null: the root), or every folder when `all`. */
export async function listFolders(
  core: VaultCore,
  c: VaultCaller,
  workspaceId: string,
  parentId: string | null | 'all',
): Promise<FolderInfo[]> {
  const ws = await core.workspace(c, workspaceId, 'viewer', 'folder.list');
  let q = core.db.selectFrom('vault_folders').selectAll().where('workspace_id', '=', ws.id);
  if (parentId !== 'all')
    q = parentId === null ? q.where('parent_id', 'is', null) : q.where('parent_id', '=', parentId);
  const rows = await q.execute();
  const out = await Promise.all(rows.map((r) => info(core, r)));
  await core.recordRead(c, 'folder.list', { workspace: ws.id });
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function folderWithRole(core: VaultCore, c: VaultCaller, id: string, action: string) {
  const f = await core.db.selectFrom('vault_folders').selectAll().where('id', '=', id).executeTakeFirst();
  if (!f) throw vaultErrors.folderNotFound();
  const ws = await core.d.access.view(c.actor, f.workspace_id);
  if (!ws) throw vaultErrors.folderNotFound();
  await core.workspace(c, f.workspace_id, 'editor', action);
  return { f, ws };
}

/** Rename and/or move a folder (never inside itself or one of its descendants). */
export async function updateFolder(
  core: VaultCore,
  c: VaultCaller,
  id: string,
  patch: { name?: string; parentId?: string | null },
): Promise<FolderInfo> {
  const { f, ws } = await folderWithRole(core, c, id, 'folder.update');
  const set: Partial<FolderRow> = {};
  if (patch.name !== undefined) set.name_enc = await core.encrypt(ws.id, checkName(patch.name), ctx.folderName(id));
  if (patch.parentId !== undefined) set.parent_id = patch.parentId;
  if (!Object.keys(set).length) throw vaultErrors.invalidInput('nothing to change: give name or parentId');
  if (patch.parentId !== undefined && patch.parentId !== f.parent_id && core.d.retention) {
    try {
      await core.d.retention.assertFolderMovable(
        ws.id,
        id,
        await core.folderChain(ws.id, f.parent_id),
        await core.folderChain(ws.id, patch.parentId),
        core.now(),
      );
    } catch (e) {
      await core.d.audit.recordNow(
        core.event(
          c,
          'folder.move',
          { workspace: ws.id, folder: id },
          'denied',
          (e as { code?: string }).code ?? 'REFUSED',
        ),
      );
      throw e;
    }
  }
  await core.db.transaction().execute(async (trx) => {
    if (patch.parentId) {
      // walk up from the new parent: meeting this folder means a cycle
      let cur: string | null = patch.parentId;
      for (let depth = 0; cur !== null; depth++) {
        if (cur === id || depth > 10_000) throw vaultErrors.folderCycle();
        const p: { parent_id: string | null } | undefined = await trx
          .selectFrom('vault_folders')
          .select('parent_id')
          .where('id', '=', cur)
          .where('workspace_id', '=', ws.id)
          .executeTakeFirst();
        if (!p) throw vaultErrors.folderNotFound();
        cur = p.parent_id;
      }
    }
    await trx
      .updateTable('vault_folders')
      .set({ ...set, updated_at: core.now() })
      .where('id', '=', id)
      .execute();
    await core.recordIn(trx, c, patch.parentId !== undefined ? 'folder.move' : 'folder.update', {
      workspace: ws.id,
      folder: id,
    });
  });
  const fresh = await core.db.selectFrom('vault_folders').selectAll().where('id', '=', f.id).executeTakeFirstOrThrow();
  return info(core, fresh);
}

/** Deletes an empty folder (no sub-folder, no live document; trashed documents go back to the root on restore). */
export async function deleteFolder(core: VaultCore, c: VaultCaller, id: string): Promise<void> {
  const { ws } = await folderWithRole(core, c, id, 'folder.delete');
  await core.db.transaction().execute(async (trx) => {
    const sub = await trx
      .selectFrom('vault_folders')
      .select('id')
      .where('parent_id', '=', id)
      .limit(1)
      .executeTakeFirst();
    const doc = await trx
      .selectFrom('vault_documents')
      .select('id')
      .where('folder_id', '=', id)
      .where('trashed_at', 'is', null)
      .limit(1)
      .executeTakeFirst();
    if (sub || doc) throw vaultErrors.folderNotEmpty();
    await trx.updateTable('vault_documents').set({ folder_id: null }).where('folder_id', '=', id).execute();
    await trx.deleteFrom('vault_folders').where('id', '=', id).execute();
    await core.recordIn(trx, c, 'folder.delete', { workspace: ws.id, folder: id });
  });
}
