import type { Readable } from 'node:stream';
import type { EncryptedBlobs } from '../blobs/index.js';
import type { SealedBlobs } from './types.js';

/**
 * The vault's blobs over src/blobs' EncryptedBlobs (streaming AES-256-GCM STREAM format,
 * docs/formats.md "Encrypted blob"). The object id bound into every chunk (AAD) is the blob id,
 * which is unique to one document version and recorded in its row with the key id: a blob moved
 * under another version, or one of its chunks spliced into another blob, fails authentication.
 * (The version number is 1 for every vault blob: it is only known when the row commits, after the
 * blob is written; the unique blob id already binds the blob to exactly one version row.)
 */
export function sealedBlobs(eb: EncryptedBlobs): SealedBlobs {
  const ref = (blobId: string) => ({ objectId: blobId, version: 1 });
  const store = eb.store;
  return {
    async write(blobId, dek, plaintext: Readable, o = {}) {
      const s = await eb.put(ref(blobId), plaintext, { dek, blobId, sha256: true, ...o });
      return { storedSize: s.storedSize, sha256: s.sha256! };
    },
    read: (blobId, keyId, range, verify) =>
      eb.get(
        { ...ref(blobId), blobId, keyId },
        range ? { start: range.start, end: range.end + 1 } : undefined,
        verify && !range ? { verify } : {},
      ),
    delete: (blobId) => store.delete(blobId),
    list: () => store.list(),
    ...(store.collectTemp
      ? { collectTemp: (olderThanMs: number, nowMs: number) => store.collectTemp!(olderThanMs, nowMs) }
      : {}),
  };
}
