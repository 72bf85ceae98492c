import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../src/storage/fs/store.js';
import { blobStoreContract } from './blob-store.js';

blobStoreContract('FsBlobStore (local filesystem)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-blobs-'));
  return { store: new FsBlobStore(dir), cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});
