import type { Readable } from 'node:stream';
import type { VaultCore } from './core.js';
import { ctx, num } from './core.js';
import { vaultErrors } from './errors.js';
import { parseRange, type ByteRange } from './range.js';
import { Streamed } from './streams.js';
import { pumped } from '../shared/pump.js';
import type { VaultCaller } from './types.js';

export interface OpenedContent {
  documentId: string;
  workspaceId: string;
  version: number;
  name: string;
  mediaType: string;
  /** plaintext size of the whole version */
  size: number;
  sha256: string;
  /** the bytes sent: null = the whole content (verified against sha256 as it streams) */
  range: ByteRange | null;
  /** plaintext; errors mid-stream on tampering or an integrity mismatch (the response is then aborted) */
  stream: Readable;
}

/**
 * Opens a version for download. Checks membership, the Range (416 before anything else happens),
 * unwraps the data key (503 when the HSM is down), opens the decrypting reader, then records the
 * download in the audit trail BEFORE returning any data (a failed audit write refuses it).
 */
export async function openContent(
  core: VaultCore,
  c: VaultCaller,
  documentId: string,
  versionNo: number | undefined,
  rangeHeader: string | undefined,
  ifRange?: string,
): Promise<OpenedContent> {
  const { d } = core;
  const { doc } = await core.document(c, documentId, 'viewer', 'doc.download');
  if (doc.trashed_at !== null) throw vaultErrors.inTrash();
  const v = await core.db
    .selectFrom('vault_versions')
    .selectAll()
    .where('document_id', '=', documentId)
    .where('version', '=', versionNo ?? doc.head_version)
    .executeTakeFirst();
  if (!v) throw vaultErrors.versionNotFound();
  const size = num(v.size);
  const sha256 = await core.versionDigest(v);
  // a stale If-Range (another version's ETag) asks for the whole content (RFC 9110 §13.1.5)
  const range = ifRange !== undefined && ifRange !== `"${sha256}"` ? null : parseRange(rangeHeader, size);
  const name = await core.decrypt(doc.name_enc, ctx.docName(doc.id));
  const targets = { workspace: doc.workspace_id, document: doc.id, version: String(v.version) };

  const onIntegrity = (why: string) => {
    d.log.error({ event: 'vault.integrity', ...targets, why }, 'integrity check failed');
    void d.alerts
      .raise({
        kind: 'vault.integrity',
        severity: 'critical',
        message: `document version failed its integrity check (${why})`,
        targets,
      })
      .catch((e: unknown) => d.log.error({ err: e }, 'could not raise the integrity alert'));
    void d.audit.recordNow(core.event(c, 'doc.download', targets, 'failure', 'INTEGRITY')).catch(() => undefined);
  };
  // a whole read is checked against the recorded SHA-256 and size as it streams (hashed beside
  // the decryption, off the event loop); its last piece is released only once they match
  const verify = (got: { sha256: string; size: number }) => {
    if (got.sha256 === sha256 && got.size === size) return undefined;
    onIntegrity(got.size !== size ? 'size mismatch' : 'SHA-256 mismatch');
    return vaultErrors.integrity();
  };
  const plain = await d.blobs.read(v.blob_id, v.key_id, range ?? undefined, range === null ? verify : undefined);
  const out = new Streamed();
  pumped(plain, out).catch((e: unknown) => {
    if (isIntegrityError(e) && !(e as { code?: string }).code?.startsWith('INTEGRITY'))
      onIntegrity('authentication failed');
  });
  try {
    await core.recordRead(c, 'doc.download', targets);
  } catch (e) {
    out.destroy();
    plain.destroy();
    throw e;
  }
  return {
    documentId: doc.id,
    workspaceId: doc.workspace_id,
    version: v.version,
    name,
    mediaType: v.media_type,
    size,
    sha256,
    range,
    stream: out,
  };
}

/** The keys module reports tampered ciphertext with an *INTEGRITY* code. */
function isIntegrityError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.includes('INTEGRITY');
}
