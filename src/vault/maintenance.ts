import { scrubDeleted } from '../db/index.js';
import { ctx, isVaultBlob, iso, num, type VaultCore } from './core.js';
import { indexRows, writeIndex } from './name-index.js';
import { vaultErrors } from './errors.js';
import type { VaultCaller } from './types.js';
import { IDEMPOTENCY_TTL_MS } from './upload.js';

const DAY = 86_400_000;

/**
 * Crypto-shredding of one document, in three crash-safe steps:
 * 1. one transaction marks it purged (hidden everywhere from then on) and writes the audit record;
 * 2. every version's data key is destroyed (the content is unrecoverable from here, by anyone),
 *    then its blob is deleted;
 * 3. one transaction deletes the rows and gives the bytes back to the workspace's usage.
 * A crash after 1 leaves `purged_at` set, and the next purge run finishes 2 and 3 (both
 * idempotent); a blob left behind is an orphan that collection removes.
 */
async function shred(core: VaultCore, documentId: string, actor: string): Promise<{ versions: number; bytes: number }> {
  const { d } = core;
  const versions = await core.db
    .selectFrom('vault_versions')
    .selectAll()
    .where('document_id', '=', documentId)
    .orderBy('version')
    .execute();
  const head = await core.db
    .selectFrom('vault_documents')
    .select(['workspace_id', 'folder_id', 'trashed_at'])
    .where('id', '=', documentId)
    .executeTakeFirst();
  // what the destruction certificate names, read while the rows (and the digests' field key) are there
  const described = await Promise.all(
    versions.map(async (v) => ({
      version: num(v.version),
      sha256: await core.versionDigest(v).catch(() => 'unreadable'),
      size: num(v.size),
      depositedAt: num(v.created_at),
      depositedBy: v.created_by,
      keyId: v.key_id,
    })),
  );
  await d.dataKeys.destroy(versions.map((v) => v.key_id));
  for (const v of versions) {
    await d.blobs
      .delete(v.blob_id)
      .catch((e: unknown) => d.log.warn({ err: e, blob: v.blob_id }, 'blob not deleted; orphan collection will'));
  }
  const bytes = versions.reduce((s, v) => s + num(v.size), 0);
  await core.db.transaction().execute(async (trx) => {
    const doc = await trx
      .selectFrom('vault_documents')
      .select('workspace_id')
      .where('id', '=', documentId)
      .executeTakeFirst();
    if (!doc) return;
    if (d.retention && head)
      await d.retention.certify(trx, {
        documentId,
        workspaceId: head.workspace_id,
        folderId: head.folder_id,
        versions: described,
        trashedAt: head.trashed_at === null ? null : num(head.trashed_at),
        destroyedAt: core.now(),
        actor,
      });
    await trx.deleteFrom('vault_versions').where('document_id', '=', documentId).execute();
    await trx.deleteFrom('vault_idempotency').where('document_id', '=', documentId).execute();
    await d.receipts?.forget(trx, documentId);
    await trx.deleteFrom('vault_name_index').where('document_id', '=', documentId).execute();
    await trx.deleteFrom('vault_documents').where('id', '=', documentId).execute();
    core.names.delete(documentId);
    core.tags.delete(documentId);
    await trx
      .updateTable('vault_usage')
      .set((eb) => ({ used_bytes: eb('used_bytes', '-', bytes) }))
      .where('workspace_id', '=', doc.workspace_id)
      .execute();
  });
  return { versions: versions.length, bytes };
}

/** Purges one trashed document now (workspace owners). */
export async function purgeNow(
  core: VaultCore,
  c: VaultCaller,
  id: string,
): Promise<{ id: string; versions: number; bytes: number }> {
  const { doc, ws } = await core.document(c, id, 'owner', 'doc.purge');
  if (doc.trashed_at === null) throw vaultErrors.notInTrash();
  await core.assertDestroyable(c, doc, 'doc.purge');
  await core.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('vault_documents')
      .set({ purged_at: core.now() })
      .where('id', '=', id)
      .where('purged_at', 'is', null)
      .where('trashed_at', 'is not', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw vaultErrors.documentNotFound();
    await core.recordIn(trx, c, 'doc.purge', { workspace: ws.id, document: id });
  });
  const r = await shred(core, id, c.actor.id);
  return { id, ...r };
}

export interface PurgeReport {
  documents: number;
  versions: number;
  bytes: number;
  cutoff: string;
}

/**
 * The trash-retention job: documents trashed more than `trashRetentionDays` ago are
 * crypto-shredded, plus any purge a crash interrupted.
 */
export async function purgeExpired(
  core: VaultCore,
  actor: string,
  signal?: AbortSignal,
  progress?: (done: number, total: number) => void,
): Promise<PurgeReport> {
  const cutoff = core.now() - core.d.config.trashRetentionDays * DAY;
  const expired = await core.db
    .selectFrom('vault_documents')
    .select(['id', 'workspace_id', 'folder_id'])
    .where('purged_at', 'is', null)
    .where('trashed_at', 'is not', null)
    .where('trashed_at', '<=', cutoff)
    .execute();
  for (const doc of expired) {
    // retained or held (a policy or hold that came after it was trashed): it waits in the trash
    if (
      core.d.retention &&
      !(await core.d.retention.assertDestroyable(await core.guarded(doc), core.now()).then(
        () => true,
        () => false,
      ))
    )
      continue;
    await core.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('vault_documents')
        .set({ purged_at: core.now() })
        .where('id', '=', doc.id)
        .where('purged_at', 'is', null)
        .execute();
      await core.d.audit.record(trx, {
        action: 'doc.purge',
        actor,
        outcome: 'success',
        reason: 'TRASH_RETENTION',
        targets: { workspace: doc.workspace_id, document: doc.id },
      });
    });
  }
  const marked = await core.db.selectFrom('vault_documents').select('id').where('purged_at', 'is not', null).execute();
  const report: PurgeReport = { documents: 0, versions: 0, bytes: 0, cutoff: iso(cutoff)! };
  for (const [i, doc] of marked.entries()) {
    if (signal?.aborted) break;
    const r = await shred(core, doc.id, actor);
    report.documents++;
    report.versions += r.versions;
    report.bytes += r.bytes;
    progress?.(i + 1, marked.length);
  }
  return report;
}

export interface SweepReport {
  /** pending uploads past their grace (crash, kill -9) removed with their blob and data key */
  abandonedUploads: number;
  /** temp files of blob writes that died */
  tempFiles: number;
  /** data keys of uploads that died before their pending row committed */
  orphanKeys: number;
  /** idempotency keys older than IDEMPOTENCY_TTL_MS, forgotten */
  expiredIdempotencyKeys: number;
}

export interface CollectReport extends SweepReport {
  /** vault blobs referenced by nothing, deleted */
  orphanBlobs: number;
  scannedBlobs: number;
}

/** Data-key scope of an upload's blob (src/vault/upload.ts): `doc:<document id>:<blob id>`. */
const UPLOAD_KEY_SCOPE = /^doc:[0-9a-f-]{36}:[0-9a-f]{32}_doc$/;

/**
 * What a killed upload leaves, once `vault.pendingUploadGraceMs` passed (never younger, never
 * referenced): its pending row with its blob and data key, its temp file, and a data key created
 * just before the kill with no pending row yet. Cheap (no listing of the blob store): run at start
 * and hourly by `vault.sweep-uploads`, and as the first step of the daily collection.
 */
export async function sweepUploads(core: VaultCore): Promise<SweepReport> {
  const { d } = core;
  const cutoff = core.now() - d.config.pendingUploadGraceMs;
  const report: SweepReport = { abandonedUploads: 0, tempFiles: 0, orphanKeys: 0, expiredIdempotencyKeys: 0 };
  const stale = await core.db.selectFrom('vault_uploads').selectAll().where('expires_at', '<', core.now()).execute();
  for (const u of stale) {
    await d.blobs.delete(u.blob_id);
    await d.dataKeys.destroy(u.key_id);
    await core.db
      .deleteFrom('vault_uploads')
      .where('blob_id', '=', u.blob_id)
      .where('expires_at', '<', core.now())
      .execute();
    report.abandonedUploads++;
  }
  if (d.blobs.collectTemp) report.tempFiles = await d.blobs.collectTemp(d.config.pendingUploadGraceMs, core.now());
  const keys = await core.db
    .selectFrom('data_keys')
    .select(['id', 'scope'])
    .where('scope', 'like', 'doc:%')
    .where('name', 'is', null)
    .where('created_at', '<', cutoff)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('vault_versions').select('key_id').whereRef('vault_versions.key_id', '=', 'data_keys.id'))),
    )
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('vault_uploads').select('key_id').whereRef('vault_uploads.key_id', '=', 'data_keys.id'))),
    )
    .execute();
  for (const k of keys) {
    if (!UPLOAD_KEY_SCOPE.test(k.scope)) continue;
    // re-checked at deletion: a version committed since the query keeps its key
    const used = await core.db.selectFrom('vault_versions').select('id').where('key_id', '=', k.id).executeTakeFirst();
    if (used) continue;
    await d.dataKeys.destroy(k.id);
    report.orphanKeys++;
  }
  const idem = await core.db
    .deleteFrom('vault_idempotency')
    .where('created_at', '<=', core.now() - IDEMPOTENCY_TTL_MS)
    .executeTakeFirst();
  report.expiredIdempotencyKeys = Number(idem.numDeletedRows);
  const total = report.abandonedUploads + report.tempFiles + report.orphanKeys;
  if (total) d.log.info({ event: 'vault.uploads_swept', ...report }, 'leftovers of interrupted uploads removed');
  return report;
}

/**
 * Orphan collection. Safe against concurrent uploads: a blob is only ever written after its
 * pending row committed, and the store is listed BEFORE the rows are read, so any blob the
 * listing shows is either pending, committed, or truly orphaned when its batch is checked.
 */
export async function collectOrphans(core: VaultCore, signal?: AbortSignal): Promise<CollectReport> {
  const { d } = core;
  const report: CollectReport = { ...(await sweepUploads(core)), orphanBlobs: 0, scannedBlobs: 0 };
  let batch: string[] = [];
  const check = async () => {
    if (!batch.length) return;
    const ids = batch;
    batch = [];
    const known = await core.db.transaction().execute(async (trx) => {
      const a = await trx.selectFrom('vault_versions').select('blob_id').where('blob_id', 'in', ids).execute();
      const b = await trx.selectFrom('vault_uploads').select('blob_id').where('blob_id', 'in', ids).execute();
      return new Set([...a, ...b].map((r) => r.blob_id));
    });
    for (const id of ids) {
      if (known.has(id)) continue;
      await d.blobs.delete(id);
      report.orphanBlobs++;
      d.log.info({ event: 'vault.orphan_collected', blob: id }, 'orphan blob deleted');
    }
  };
  for await (const id of d.blobs.list()) {
    if (signal?.aborted) break;
    if (!isVaultBlob(id)) continue;
    report.scannedBlobs++;
    batch.push(id);
    if (batch.length >= 500) await check();
  }
  await check();
  return report;
}

/**
 * Encrypts the SHA-256 of versions written before digests were kept encrypted
 * (migrations/2026-12-07T0150-vault-digest-enc.ts): each row gets its field ciphertext and its
 * clear digest is blanked in the same update, then the database is scrubbed (zeroed pages, a
 * truncated write-ahead log) so the clear digests are in no file. Idempotent; run at start.
 */
export async function sealDigests(core: VaultCore): Promise<{ sealed: number }> {
  let sealed = 0;
  for (;;) {
    const rows = await core.db
      .selectFrom('vault_versions as v')
      .innerJoin('vault_documents as d', 'd.id', 'v.document_id')
      .select(['v.id', 'v.sha256', 'd.workspace_id'])
      .where('v.sha256_enc', 'is', null)
      .limit(500)
      .execute();
    if (rows.length === 0) break;
    for (const r of rows) {
      const enc = await core.encrypt(r.workspace_id, r.sha256, ctx.versionDigest(r.id));
      await core.db
        .updateTable('vault_versions')
        .set({ sha256_enc: enc, sha256: '' })
        .where('id', '=', r.id)
        .where('sha256_enc', 'is', null)
        .execute();
      sealed++;
    }
  }
  if (sealed > 0) await scrubDeleted(core.db);
  return { sealed };
}

/**
 * Indexes the names and tags of documents written before the name index
 * (migrations/2026-12-07T0440-vault-name-index.ts) in the blind index (name-index.ts): a
 * workspace's searches use the index once none of its documents is left. Idempotent; run at start.
 */
export async function indexNames(core: VaultCore, signal?: AbortSignal): Promise<{ indexed: number }> {
  let indexed = 0;
  const tried = new Set<string>();
  for (;;) {
    if (signal?.aborted) break;
    const rows = (
      await core.db
        .selectFrom('vault_documents')
        .select(['id', 'workspace_id', 'name_enc', 'tags_enc'])
        .where('name_index', 'is', null)
        .where('purged_at', 'is', null)
        .limit(200 + tried.size)
        .execute()
    ).filter((r) => !tried.has(r.id));
    if (rows.length === 0) break;
    for (const r of rows) {
      tried.add(r.id);
      const index = await indexRows(
        core.d.fields,
        r.workspace_id,
        r.id,
        await core.docName(r.id, r.name_enc),
        await core.docTags(r.id, r.tags_enc),
      );
      indexed += await core.db.transaction().execute(async (trx) => {
        // still the same name and tags (a rename or re-tag meanwhile made its own rows)
        const now = await trx
          .selectFrom('vault_documents')
          .select(['name_enc', 'tags_enc', 'name_index'])
          .where('id', '=', r.id)
          .executeTakeFirst();
        if (!now || now.name_index != null || now.name_enc !== r.name_enc || now.tags_enc !== r.tags_enc) return 0;
        await writeIndex(trx, r.id, index);
        return 1;
      });
    }
  }
  return { indexed };
}
