/**
 * Tables owned by the vault (migrations/2026-11-22T1800-vault.ts). Workspaces and their members
 * belong to the identity module; the vault refers to them by id.
 *
 * Confidential columns (`*_enc`) hold FieldCipher ciphertext, never plaintext (invariant 1).
 * Times are milliseconds since the epoch.
 */
export interface VaultTables {
  vault_folders: {
    id: string;
    workspace_id: string;
    parent_id: string | null;
    name_enc: string;
    created_at: number;
    created_by: string;
    updated_at: number;
  };
  vault_documents: {
    id: string;
    workspace_id: string;
    folder_id: string | null;
    name_enc: string;
    description_enc: string | null;
    /** FieldCipher ciphertext of a JSON array of tags */
    tags_enc: string | null;
    /** number of the newest version (documents always have at least one) */
    head_version: number;
    /** plaintext size of the newest version */
    head_size: number;
    created_at: number;
    created_by: string;
    updated_at: number;
    trashed_at: number | null;
    trashed_by: string | null;
    /** set when purging (crypto-shredding) began; the row is deleted once keys and blobs are gone */
    purged_at: number | null;
    /** format of its rows in vault_name_index (NAME_INDEX_FORMAT); null: not indexed yet */
    name_index?: number | null;
  };
  /**
   * Blind index of names and tags (migrations/2026-12-07T0440-vault-name-index.ts,
   * src/vault/name-index.ts): search tokens, each an HMAC under the workspace's index key.
   */
  vault_name_index: {
    token: string;
    document_id: string;
    /** 'n': a word prefix of the name; 't': a whole tag */
    kind: string;
  };
  vault_versions: {
    id: string;
    document_id: string;
    version: number;
    /** the encrypted blob in the BlobStore */
    blob_id: string;
    /** the data key (DataKeys id) the blob is encrypted under; destroyed by purge */
    key_id: string;
    /** plaintext size */
    size: number;
    /** size in the blob store (header, tags) */
    stored_size: number;
    /** '' since migrations/2026-12-07T0150-vault-digest-enc.ts; before it (until sealed), the plaintext SHA-256 in hex */
    sha256: string;
    /** FieldCipher ciphertext of the plaintext's SHA-256 (hex), context `vault_versions.sha256:<id>` */
    sha256_enc: string | null;
    media_type: string;
    created_at: number;
    created_by: string;
  };
  /**
   * Uploads in flight: the blob is being written (or written and renamed) but its version row has
   * not committed. Collected with its blob and data key when `expires_at` passes (crash, kill -9).
   */
  vault_uploads: {
    blob_id: string;
    key_id: string;
    workspace_id: string;
    started_at: number;
    expires_at: number;
  };
  /**
   * Per-workspace usage: the sum of plaintext sizes of every stored version, trash included. The
   * quota itself is `workspaces.quota_bytes` (identity module; null = vault.defaultQuotaBytes).
   */
  vault_usage: {
    workspace_id: string;
    used_bytes: number;
  };
  /**
   * Idempotency keys of uploads (migrations/2026-12-07T0024-vault-idempotency.ts): per user, the
   * SHA-256 of the key, what it was used on (`ws:<id>` or `doc:<id>`) and the version it created.
   * Kept for a day; deleted with their document.
   */
  vault_idempotency: {
    actor_id: string;
    key_hash: string;
    target: string;
    document_id: string;
    version: number;
    created_at: number;
  };
}
