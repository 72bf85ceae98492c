import type { StorageConfig } from '../config/sections/storage.js';
import { readSecretFile } from '../config/index.js';
import { readCaPem, s3Client, s3Display } from '../shared/s3.js';
import { FsBlobStore } from './fs/store.js';
import { S3BlobStore } from './s3/store.js';
import type { BlobStore } from './types.js';

/** The one place that maps `storage.type` to an implementation. */
export function createBlobStore(cfg: StorageConfig): BlobStore & {
  collectTemp?(olderThanMs: number, nowMs?: number): Promise<number>;
  mtimeMs?(id: string): Promise<number | null>;
} {
  switch (cfg.type) {
    case 'fs':
      return new FsBlobStore(cfg.dir);
    case 's3': {
      const s = cfg.s3;
      if (!s) throw new Error('storage.type is "s3" but storage.s3 is missing (the config loader refuses this)');
      const client = s3Client({
        endpoint: s.endpoint,
        region: s.region,
        forcePathStyle: s.forcePathStyle,
        accessKeyId: s.accessKeyId,
        secretAccessKey: readSecretFile(s.secretAccessKeyFile, 'storage.s3.secretAccessKeyFile'),
        caPem: readCaPem(s.caFile),
      });
      return new S3BlobStore(client, {
        bucket: s.bucket,
        prefix: s.prefix,
        partSize: s.partSizeMiB * 1024 * 1024,
        queueSize: s.queueSize,
        display: s3Display(s, s.bucket, s.prefix),
      });
    }
  }
}
