import type { StorageConfig } from '../config/sections/storage.js';
import { FsBlobStore } from './fs/store.js';
import type { BlobStore } from './types.js';

/** The one place that maps `storage.type` to an implementation. */
export function createBlobStore(cfg: StorageConfig): BlobStore & {
  collectTemp?(olderThanMs: number, nowMs?: number): Promise<number>;
  mtimeMs?(id: string): Promise<number | null>;
} {
  switch (cfg.type) {
    case 'fs':
      return new FsBlobStore(cfg.dir);
  }
}
