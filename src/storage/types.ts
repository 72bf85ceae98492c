import type { Readable } from 'node:stream';

/**
 * Write-once blob storage (like Vault's physical.Backend: storage is untrusted; it
 * only ever sees ciphertext). Implementations: ./fs/ (local filesystem).
 *
 * - `put` is atomic: the blob appears whole under `id` or not at all (temp name, fsync, rename,
 *   fsync of the directory); an existing id is never overwritten.
 * - `get` streams the stored bytes; `range` reads bytes [start, end) of them (random access by
 *   chunk); `readSize` is a hint: pieces of that many bytes (one encrypted chunk each). A missing
 *   id fails with BLOB_NOT_FOUND (404).
 * - `prefix` answers the stored size and the first min(size, `max`) bytes in one read (a small
 *   blob whole, a large one's header); null for a missing id.
 * - `put` of an existing id fails with BLOB_EXISTS (409) and leaves the existing blob untouched; a
 *   source stream that errors leaves nothing behind.
 * - `delete` of a missing id is not an error. `list` is for orphan collection and backups; it never
 *   lists a blob that is still being written.
 * - Ids are 1..128 characters of [A-Za-z0-9_-] (BLOB_ID_INVALID otherwise).
 */
export interface BlobStore {
  /** When `data` was handed over (src/shared/buffers.ts `handOver`), its pieces are the store's to free once written. */
  put(id: string, data: Readable): Promise<{ size: number }>;
  get(id: string, range?: { start: number; end: number }, o?: { readSize?: number }): Promise<Readable>;
  stat(id: string): Promise<{ size: number } | null>;
  prefix(id: string, max: number): Promise<{ size: number; bytes: Buffer } | null>;
  delete(id: string): Promise<void>;
  list(): AsyncIterable<string>;
}
