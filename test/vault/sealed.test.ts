import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedBlobs } from '../../src/blobs/index.js';
import { FsBlobStore } from '../../src/storage/fs/store.js';
import { sealedBlobs } from '../../src/vault/sealed.js';
import type { SealedBlobs } from '../../src/vault/types.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { Pattern } from '../support/pattern.js';

/** The vault's blobs over the keys module's format, with a small chunk size so every edge is cheap. */
const C = 4096;
let t: TestAppliance;
let blobs: SealedBlobs;
let dir: string;

beforeAll(async () => {
  t = await createTestAppliance();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-sealed-'));
  blobs = sealedBlobs(new EncryptedBlobs(new FsBlobStore(dir), t.appliance.keys.dataKeys, { chunkSize: C }));
});
afterAll(async () => {
  await t?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const read = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

describe('sealed blobs: random access at every chunk edge', () => {
  it.each([
    ['an exact multiple of the chunk size', 3 * C],
    ['a partial last chunk', 3 * C + 10],
  ])('%s', async (_l, size) => {
    const data = new Pattern(size).slice(0, size);
    const dek = await t.appliance.keys.dataKeys.create('test');
    const id = `${size.toString(16).padStart(32, '0')}_doc`;
    await blobs.write(id, dek, Readable.from([data]));
    expect((await read(await blobs.read(id, dek.keyId))).equals(data)).toBe(true);
    const edges = [0, 1, C - 1, C, C + 1, 2 * C - 1, 2 * C, 3 * C - 1, size - 1].filter((e) => e < size);
    for (const start of edges) {
      for (const end of edges) {
        if (end < start) continue;
        const got = await read(await blobs.read(id, dek.keyId, { start, end }));
        expect(got.equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`).toBe(true);
      }
    }
  });

  it('a blob cut at a chunk boundary fails, for whole reads and for ranges that reach the cut', async () => {
    const size = 3 * C + 10;
    const data = new Pattern(9).slice(0, size);
    const dek = await t.appliance.keys.dataKeys.create('test');
    const id = `${'c'.repeat(32)}_doc`;
    await blobs.write(id, dek, Readable.from([data]));
    const file = path.join(dir, id.slice(0, 2), id);
    const st = fs.statSync(file);
    fs.truncateSync(file, st.size - (10 + 16)); // drop the last (partial) chunk
    await expect(read(await blobs.read(id, dek.keyId))).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
  });
});
