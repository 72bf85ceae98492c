import type { BlobStore } from '../storage/index.js';
import type { DataKeys } from '../keys/index.js';
import { EncryptedBlobs } from './encrypted.js';
import { Sealer } from './sealer.js';

export { EncryptedBlobs, type StoredBlob, type ObjectRef, type Verify } from './encrypted.js';
export { Sealer } from './sealer.js';
export { EncryptStream } from './encrypt.js';
export { DecryptStream } from './decrypt.js';
export { makeHeader, parseHeader, DEFAULT_CHUNK, type BlobHeader } from './format.js';

/**
 * Document bodies, one straight path: the blob format (./format.ts, docs/formats.md "Encrypted
 * blob"), the encrypting and decrypting streams, the sealing workers and the encrypting store over
 * any BlobStore. This module depends on `keys` only through data keys and on `storage` only through
 * `BlobStore`; main.ts builds the store and hands it here.
 */
export interface Blobs {
  blobs: EncryptedBlobs;
  close(): Promise<void>;
}

/** The server's encrypted blobs: chunks sealed, opened and hashed in worker threads, the event loop only moves bytes. */
export function openBlobs(o: {
  store: ConstructorParameters<typeof EncryptedBlobs>[0];
  dataKeys: DataKeys;
  chunkSize?: number;
}): Blobs {
  const sealer = new Sealer();
  const blobs = new EncryptedBlobs(o.store, o.dataKeys, { sealer, ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}) });
  return { blobs, close: () => sealer.close() };
}
export type { BlobStore };
