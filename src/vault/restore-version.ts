import { num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import type { VaultCaller } from './types.js';
import { upload, type UploadResult } from './upload.js';

/**
 * Restores an older version as a new one: its bytes are read back (checked against its SHA-256 and
 * size as they stream) and deposited again through the one upload path, under a fresh data key
 * and blob, counted against the quota. Nothing is rewritten: every version stays as it was. The
 * restore is audited as `doc.version.restore` (the version restored from) before any byte is read;
 * the new version as `doc.write`, like any deposit.
 */
export async function restoreVersion(
  core: VaultCore,
  c: VaultCaller,
  documentId: string,
  from: number,
): Promise<UploadResult & { restoredFrom: number }> {
  const { doc, ws } = await core.document(c, documentId, 'editor', 'doc.version.restore');
  if (doc.trashed_at !== null) throw vaultErrors.inTrash();
  const v = await core.db
    .selectFrom('vault_versions')
    .selectAll()
    .where('document_id', '=', documentId)
    .where('version', '=', from)
    .executeTakeFirst();
  if (!v) throw vaultErrors.versionNotFound();
  if (num(v.version) === num(doc.head_version))
    throw vaultErrors.invalidInput(`version ${from} is already the newest: there is nothing to restore`);
  const size = num(v.size);
  const sha256 = await core.versionDigest(v);
  await core.recordRead(c, 'doc.version.restore', {
    workspace: ws.id,
    document: documentId,
    version: String(from),
  });
  const plain = await core.d.blobs.read(v.blob_id, v.key_id, undefined, (got) =>
    got.sha256 === sha256 && got.size === size ? undefined : vaultErrors.integrity(),
  );
  const r = await upload(
    core,
    c,
    { kind: 'version', documentId },
    { stream: plain, mediaType: v.media_type, declaredLength: size, expectedSha256: sha256 },
  );
  return { ...r, restoredFrom: from };
}
