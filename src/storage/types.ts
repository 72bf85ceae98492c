import type { Readable } from 'node:stream';

/**
 * Write-once blob storage (STYLE.md #1, like Vault's physical.Backend: storage is untrusted; it
 * only ever sees ciphertext). Implementations: ./fs/ (local filesystem).
 *
 * - `put` is atomic: the blob appears whole under `id` or not at all (temp name, fsync, rename,
 *   fsync of the directory); an existing id is never overwritten.
 * - `get` streams the stored bytes; `range` reads part of them (random access by chunk).
 * - `list` is for orphan collection and backups.
 */
export interface BlobStore {
  put(id: string, data: Readable): Promise<{ size: number }>;
  get(id: string, range?: { start: number; end: number }): Promise<Readable>;
  stat(id: string): Promise<{ size: number } | null>;
  delete(id: string): Promise<void>;
  list(): AsyncIterable<string>;
}
