import type { Selectable } from 'kysely';
import type { VaultTables } from './tables.js';
import { ctx, iso, num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import { checkDescription, checkName, checkTags } from './names.js';
import { indexRows, writeIndex } from './name-index.js';
import type { VaultCaller } from './types.js';

export type DocumentRow = Selectable<VaultTables['vault_documents']>;
export type VersionRow = Selectable<VaultTables['vault_versions']>;

export interface DocumentInfo {
  id: string;
  workspaceId: string;
  folderId: string | null;
  name: string;
  description: string | null;
  tags: string[];
  version: number;
  size: number;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  trashedAt: string | null;
}

export interface VersionInfo {
  version: number;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  createdBy: string;
  /** the author's user name, when `createdBy` is a user or one of their tokens */
  createdByName: string | null;
}

/** Decrypts a document row's fields. */
export async function documentInfo(
  core: VaultCore,
  doc: DocumentRow,
  opts: { description?: boolean } = {},
): Promise<DocumentInfo> {
  const [name, description, tags] = await Promise.all([
    core.docName(doc.id, doc.name_enc),
    opts.description !== false && doc.description_enc !== null
      ? core.decrypt(doc.description_enc, ctx.docDescription(doc.id))
      : Promise.resolve(null),
    core.docTags(doc.id, doc.tags_enc),
  ]);
  return {
    id: doc.id,
    workspaceId: doc.workspace_id,
    folderId: doc.folder_id,
    name,
    description,
    tags,
    version: num(doc.head_version),
    size: num(doc.head_size),
    createdAt: iso(doc.created_at)!,
    createdBy: doc.created_by,
    updatedAt: iso(doc.updated_at)!,
    trashedAt: iso(doc.trashed_at),
  };
}

export const versionInfo = async (
  core: VaultCore,
  v: VersionRow,
  names: ReadonlyMap<string, string> = new Map(),
): Promise<VersionInfo> => ({
  version: num(v.version),
  size: num(v.size),
  sha256: await core.versionDigest(v),
  mediaType: v.media_type,
  createdAt: iso(v.created_at)!,
  createdBy: v.created_by,
  createdByName: names.get(v.created_by) ?? null,
});

/** Metadata and versions of a document (audited as a read before it is returned). */
export async function getDocument(
  core: VaultCore,
  c: VaultCaller,
  id: string,
): Promise<DocumentInfo & { versions: VersionInfo[] }> {
  const { doc } = await core.document(c, id, 'viewer', 'doc.read');
  const info = await documentInfo(core, doc);
  const versions = await core.db
    .selectFrom('vault_versions')
    .selectAll()
    .where('document_id', '=', id)
    .orderBy('version', 'desc')
    .execute();
  const names = (await core.d.actors?.usernames([...new Set(versions.map((v) => v.created_by))])) ?? new Map();
  await core.recordRead(c, 'doc.read', { workspace: doc.workspace_id, document: id });
  return { ...info, versions: await Promise.all(versions.map((v) => versionInfo(core, v, names))) };
}

export interface DocumentPatch {
  name?: string;
  /** null = the workspace root */
  folderId?: string | null;
  description?: string | null;
  tags?: string[];
}

/** Rename, move, describe, tag. */
export async function updateDocument(
  core: VaultCore,
  c: VaultCaller,
  id: string,
  patch: DocumentPatch,
): Promise<DocumentInfo> {
  const { doc, ws } = await core.document(c, id, 'editor', 'doc.update');
  if (doc.trashed_at !== null) throw vaultErrors.inTrash();
  const set: Partial<DocumentRow> = {};
  if (patch.name !== undefined) set.name_enc = await core.encrypt(ws.id, checkName(patch.name), ctx.docName(id));
  if (patch.description !== undefined) {
    set.description_enc =
      patch.description === null
        ? null
        : await core.encrypt(ws.id, checkDescription(patch.description), ctx.docDescription(id));
  }
  if (patch.tags !== undefined) {
    const tags = checkTags(patch.tags);
    set.tags_enc = tags.length ? await core.encrypt(ws.id, JSON.stringify(tags), ctx.docTags(id)) : null;
  }
  if (patch.folderId !== undefined && patch.folderId !== doc.folder_id && core.d.retention) {
    try {
      await core.d.retention.assertMovable(
        await core.guarded(doc),
        await core.folderChain(ws.id, patch.folderId),
        core.now(),
      );
    } catch (e) {
      await core.d.audit.recordNow(
        core.event(
          c,
          'doc.move',
          { workspace: ws.id, document: id },
          'denied',
          (e as { code?: string }).code ?? 'REFUSED',
        ),
      );
      throw e;
    }
  }
  if (patch.folderId !== undefined) set.folder_id = patch.folderId;
  const changed = Object.keys(set);
  if (changed.length === 0)
    throw vaultErrors.invalidInput('nothing to change: give name, folderId, description or tags');
  // a new name or new tags: the document's rows in the name index are made again from both
  const index =
    patch.name !== undefined || patch.tags !== undefined
      ? await indexRows(
          core.d.fields,
          ws.id,
          id,
          patch.name !== undefined ? checkName(patch.name) : await core.docName(id, doc.name_enc),
          patch.tags !== undefined ? checkTags(patch.tags) : await core.docTags(id, doc.tags_enc),
        )
      : undefined;
  await core.db.transaction().execute(async (trx) => {
    if (patch.folderId) {
      const f = await trx
        .selectFrom('vault_folders')
        .select('id')
        .where('id', '=', patch.folderId)
        .where('workspace_id', '=', ws.id)
        .executeTakeFirst();
      if (!f) throw vaultErrors.folderNotFound();
    }
    const r = await trx
      .updateTable('vault_documents')
      .set({ ...set, updated_at: core.now() })
      .where('id', '=', id)
      .where('trashed_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw vaultErrors.inTrash();
    if (index) await writeIndex(trx, id, index);
    await core.recordIn(trx, c, patch.folderId !== undefined ? 'doc.move' : 'doc.update', {
      workspace: ws.id,
      document: id,
    });
  });
  const fresh = await core.db.selectFrom('vault_documents').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return documentInfo(core, fresh);
}

/** Moves a document to the trash: hidden from listings, restorable until the retention period ends. */
export async function trashDocument(
  core: VaultCore,
  c: VaultCaller,
  id: string,
): Promise<{ id: string; trashedAt: string; purgeAfter: string }> {
  const { doc, ws } = await core.document(c, id, 'editor', 'doc.delete');
  if (doc.trashed_at !== null) throw vaultErrors.inTrash();
  await core.assertDestroyable(c, doc, 'doc.delete');
  const now = core.now();
  await core.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('vault_documents')
      .set({ trashed_at: now, trashed_by: c.actor.id, updated_at: now })
      .where('id', '=', id)
      .where('trashed_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw vaultErrors.inTrash();
    await core.recordIn(trx, c, 'doc.delete', { workspace: ws.id, document: id });
  });
  return { id, trashedAt: iso(now)!, purgeAfter: iso(now + core.d.config.trashRetentionDays * 86_400_000)! };
}

/** Restores a document from the trash (into the root when its folder was deleted meanwhile). */
export async function restoreDocument(core: VaultCore, c: VaultCaller, id: string): Promise<DocumentInfo> {
  const { ws } = await core.document(c, id, 'editor', 'doc.restore');
  await core.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('vault_documents')
      .set({ trashed_at: null, trashed_by: null, updated_at: core.now() })
      .where('id', '=', id)
      .where('trashed_at', 'is not', null)
      .where('purged_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw vaultErrors.notInTrash();
    await core.recordIn(trx, c, 'doc.restore', { workspace: ws.id, document: id });
  });
  const fresh = await core.db.selectFrom('vault_documents').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return documentInfo(core, fresh);
}
