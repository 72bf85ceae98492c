import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKeys, type Keys } from '../../src/keys/index.js';
import { EncryptedBlobs, Sealer, openBlobs, type Blobs } from '../../src/blobs/index.js';
import { INLINE_MAX_BYTES } from '../../src/blobs/encrypted.js';
import { createBlobStore } from '../../src/storage/index.js';
import { ensureKek } from '../../src/keys/bootstrap.js';
import { FakeClock } from '../../src/shared/clock.js';
import { TAG_BYTES } from '../../src/blobs/format.js';
import { createTestToken } from '../support/softhsm.js';
import { createTestDb } from '../support/db.js';

const CHUNK = 4096;

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}
/**
 * Reads in flowing mode until the stream fails: every byte the stream releases ('data' events are
 * emitted as it pushes) is captured, so this is exactly what a client would have received.
 */
function collectUntilError(
  r: Readable,
): Promise<{ got: Buffer; error: { code?: string; message: string } | undefined }> {
  const parts: Buffer[] = [];
  return new Promise((resolve) => {
    r.on('data', (c: Buffer) => parts.push(c));
    r.on('end', () => resolve({ got: Buffer.concat(parts), error: undefined }));
    r.on('error', (e) => resolve({ got: Buffer.concat(parts), error: e as { code?: string; message: string } }));
  });
}
/** a source in uneven pieces */
function pieces(b: Buffer): Readable {
  const out: Buffer[] = [];
  for (let o = 0, i = 0; o < b.length; i++) {
    const n = [1, 7, 4095, 4096, 4097, 10_000, 65_536][i % 7]!;
    out.push(b.subarray(o, o + n));
    o += n;
  }
  return Readable.from(out);
}

describe('encrypted blobs (chunked AES-256-GCM STREAM) over the filesystem store', () => {
  let keys: Keys;
  let opened: Blobs;
  let blobs: EncryptedBlobs;
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let blobDir: string;
  beforeAll(async () => {
    const token = createTestToken();
    await ensureKek(token.config());
    db = await createTestDb();
    blobDir = path.join(db.dir, 'blobs');
    keys = await openKeys({ config: token.config(), db: db.db, clock: new FakeClock() });
    opened = openBlobs({
      store: createBlobStore({ type: 'fs', dir: blobDir }),
      dataKeys: keys.dataKeys,
      chunkSize: CHUNK,
    });
    blobs = opened.blobs;
  });
  afterAll(async () => {
    await opened.close();
    await keys.close();
    await db.destroy();
  });
  const stored = (blobId: string) => path.join(blobDir, blobId.slice(0, 2), blobId);

  it('round-trips every size around chunk boundaries, fed in uneven pieces, ciphertext only on disk', async () => {
    for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 123, 200_000]) {
      const pt = crypto.randomBytes(n);
      const ref = { objectId: `doc-${n}`, version: 1 };
      const b = await blobs.put(ref, pieces(pt));
      expect(b.size).toBe(n);
      const chunks = Math.ceil(n / CHUNK); // data chunks; then the 16-byte end chunk
      const onDisk = fs.readFileSync(stored(b.blobId));
      expect(onDisk.length).toBe(b.storedSize);
      expect(b.storedSize - n).toBe(onDisk.readUInt16BE(6) + (chunks + 1) * TAG_BYTES);
      if (n >= 16) expect(onDisk.includes(pt.subarray(0, 16))).toBe(false);
      expect((await collect(await blobs.get({ ...ref, blobId: b.blobId, keyId: b.keyId }))).equals(pt)).toBe(true);
      expect(await blobs.describe({ ...ref, blobId: b.blobId })).toMatchObject({
        size: n,
        chunks,
        chunkSize: CHUNK,
        keyId: b.keyId,
      });
    }
  });

  it('reads any range by chunk, reading only the chunks it needs', async () => {
    const pt = crypto.randomBytes(10 * CHUNK + 500);
    const ref = { objectId: 'ranged', version: 3 };
    const b = await blobs.put(ref, Readable.from([pt]));
    for (const [s, e] of [
      [0, 1],
      [0, CHUNK],
      [CHUNK - 1, CHUNK + 1],
      [3 * CHUNK + 5, 7 * CHUNK - 5],
      [10 * CHUNK, 10 * CHUNK + 500],
      [10 * CHUNK + 499, 10 * CHUNK + 500],
      [0, pt.length],
      [7, 7],
    ] as const) {
      expect(
        (await collect(await blobs.get({ ...ref, blobId: b.blobId }, { start: s, end: e }))).equals(pt.subarray(s, e)),
      ).toBe(true);
    }
    await expect(blobs.get({ ...ref, blobId: b.blobId }, { start: 0, end: pt.length + 1 })).rejects.toMatchObject({
      code: 'RANGE_NOT_SATISFIABLE',
      httpStatus: 416,
    });
  });

  describe('tampering is detected, with no plaintext of the bad chunk released', () => {
    const pt = crypto.randomBytes(6 * CHUNK + 100); // 7 chunks
    const ref = { objectId: 'victim', version: 2 };
    let blob: { blobId: string; keyId: string };
    let original: Buffer;
    let H: number;
    const F = CHUNK + TAG_BYTES;
    beforeAll(async () => {
      blob = await blobs.put(ref, Readable.from([pt]));
      original = fs.readFileSync(stored(blob.blobId));
      H = original.readUInt16BE(6);
    });
    /** writes a tampered copy under a new id (write-once store) and reads it fully and by range */
    async function readTampered(bytes: Buffer, r = ref) {
      const id = `b_t${crypto.randomBytes(8).toString('hex')}`;
      await blobs.store.put(id, Readable.from([bytes]));
      const full = await collectUntilError(await blobs.get({ ...r, blobId: id }));
      return full;
    }
    const expectDetected = (
      res: { got: Buffer; error: { code?: string; message: string } | undefined },
      badChunk: number,
    ) => {
      expect(res.error?.code).toBe('KEYS_INTEGRITY');
      // only whole chunks before the bad one were released, and they are genuine
      expect(res.got.length).toBe(badChunk * CHUNK);
      expect(res.got.equals(pt.subarray(0, badChunk * CHUNK))).toBe(true);
    };

    it('flip a byte (in a chunk, in a tag, in the header)', async () => {
      for (const [pos, bad] of [
        [H + 2 * F + 100, 2],
        [H + 3 * F + CHUNK + 3, 3],
        [H + 6 * F + 50, 6],
      ] as const) {
        const t = Buffer.from(original);
        t[pos]! ^= 0x01;
        expectDetected(await readTampered(t), bad);
      }
      const t = Buffer.from(original);
      t[14]! ^= 0x01; // nonce prefix in the header (the AAD)
      expectDetected(await readTampered(t), 0);
    });

    it('swap two chunks', async () => {
      const t = Buffer.from(original);
      original.copy(t, H + 1 * F, H + 4 * F, H + 5 * F);
      original.copy(t, H + 4 * F, H + 1 * F, H + 2 * F);
      expectDetected(await readTampered(t), 1);
    });

    it('drop the last chunk (truncation at a chunk boundary), or cut inside it', async () => {
      // layout: 6 full chunks, a partial one (100 bytes), the 16-byte end chunk
      expect(original.length).toBe(H + 6 * F + 100 + TAG_BYTES + TAG_BYTES);
      // without the end chunk: the data looks complete, but nothing vouches that it ends there
      expectDetected(await readTampered(original.subarray(0, original.length - TAG_BYTES)), 6);
      // without the last data chunk and the end chunk (truncation at a chunk boundary)
      expectDetected(await readTampered(original.subarray(0, H + 6 * F)), 5);
      // the last data chunk dropped, the end chunk kept (its nonce counts the chunks)
      const spliced = Buffer.concat([original.subarray(0, H + 6 * F), original.subarray(original.length - TAG_BYTES)]);
      const res = await readTampered(spliced);
      expect(res.error?.code).toBe('KEYS_INTEGRITY');
      expect(res.got.equals(pt.subarray(0, 6 * CHUNK))).toBe(true);
      // cut inside a chunk, or inside the end chunk
      expectDetected(await readTampered(original.subarray(0, H + 5 * F + 100)), 5);
      expectDetected(await readTampered(original.subarray(0, original.length - 1)), 6);
      expectDetected(await readTampered(original.subarray(0, original.length - 1)), 6);
      expect((await readTampered(original.subarray(0, H + 5))).error?.code).toBe('KEYS_INTEGRITY');
    });

    it('splice a chunk from another object (same key even), or the whole blob from another object or version', async () => {
      // another object's blob under the same data key: same key, different header (AAD)
      const other = await blobs.put({ objectId: 'other', version: 2 }, Readable.from([crypto.randomBytes(pt.length)]), {
        dek: { keyId: blob.keyId, key: await keys.dataKeys.get(blob.keyId) },
      });
      const o = fs.readFileSync(stored(other.blobId));
      const Ho = o.readUInt16BE(6);
      const t = Buffer.from(original);
      o.copy(t, H + 3 * F, Ho + 3 * F, Ho + 4 * F);
      expectDetected(await readTampered(t), 3);
      // the other blob filed under this object's row
      const res = await collectUntilError(await blobs.get({ ...ref, blobId: other.blobId }));
      expect(res.error?.code).toBe('KEYS_INTEGRITY');
      expect(res.got.length).toBe(0);
      // an older version of the same object
      const v1 = await blobs.put({ objectId: 'victim', version: 1 }, Readable.from([pt]));
      expect((await collectUntilError(await blobs.get({ ...ref, blobId: v1.blobId }))).error?.code).toBe(
        'KEYS_INTEGRITY',
      );
      await expect(blobs.get({ ...ref, blobId: v1.blobId }, { start: 0, end: 10 })).rejects.toMatchObject({
        code: 'KEYS_INTEGRITY',
      });
    });

    it('random access sees tampering in the chunks it reads', async () => {
      const t = Buffer.from(original);
      t[H + 4 * F + 10]! ^= 0x80;
      const id = `b_r${crypto.randomBytes(8).toString('hex')}`;
      await blobs.store.put(id, Readable.from([t]));
      expect(
        (await collect(await blobs.get({ ...ref, blobId: id }, { start: CHUNK, end: 3 * CHUNK }))).equals(
          pt.subarray(CHUNK, 3 * CHUNK),
        ),
      ).toBe(true);
      const bad = await collectUntilError(
        await blobs.get({ ...ref, blobId: id }, { start: 4 * CHUNK + 1, end: 4 * CHUNK + 2 }),
      );
      expect(bad.error?.code).toBe('KEYS_INTEGRITY');
      expect(bad.got.length).toBe(0);
      // truncated at a chunk boundary: a range reaching what is now the last chunk fails (chunks
      // before it are genuine and read fine: random access authenticates what it reads)
      const id2 = `b_r${crypto.randomBytes(8).toString('hex')}`;
      await blobs.store.put(id2, Readable.from([original.subarray(0, H + 6 * F)]));
      expect(
        (await collect(await blobs.get({ ...ref, blobId: id2 }, { start: 0, end: 10 }))).equals(pt.subarray(0, 10)),
      ).toBe(true);
      const atEnd = await collectUntilError(
        await blobs.get({ ...ref, blobId: id2 }, { start: 5 * CHUNK, end: 5 * CHUNK + 10 }),
      );
      expect(atEnd.error?.code).toBe('KEYS_INTEGRITY');
      expect(atEnd.got.length).toBe(0);
      // a range over the genuine last chunk also checks the end chunk
      const id4 = `b_r${crypto.randomBytes(8).toString('hex')}`;
      await blobs.store.put(id4, Readable.from([original.subarray(0, original.length - 1)]));
      const cut = await collectUntilError(
        await blobs.get({ ...ref, blobId: id4 }, { start: 6 * CHUNK, end: 6 * CHUNK + 5 }),
      );
      expect(cut.error?.code).toBe('KEYS_INTEGRITY');
      expect(cut.got.length).toBe(0);
      // truncated inside a chunk: that chunk, read as the last one, fails (the last-chunk flag)
      const id3 = `b_r${crypto.randomBytes(8).toString('hex')}`;
      await blobs.store.put(id3, Readable.from([original.subarray(0, H + 5 * F + 100)]));
      const cut3 = await collectUntilError(
        await blobs.get({ ...ref, blobId: id3 }, { start: 5 * CHUNK, end: 5 * CHUNK + 10 }),
      );
      expect(cut3.error?.code).toBe('KEYS_INTEGRITY');
      expect(cut3.got.length).toBe(0);
    });

    it('alter the wrapped data key', async () => {
      const row = await db.db
        .selectFrom('data_keys')
        .select('wrapped')
        .where('id', '=', blob.keyId)
        .executeTakeFirstOrThrow();
      const w = Buffer.from(row.wrapped, 'base64');
      w[3]! ^= 0x10;
      try {
        await db.db
          .updateTable('data_keys')
          .set({ wrapped: w.toString('base64') })
          .where('id', '=', blob.keyId)
          .execute();
        keys.dataKeys.wipeCache();
        const res = await collectUntilError(await blobs.get({ ...ref, blobId: blob.blobId }));
        expect(res.error?.code).toBe('KEYS_INTEGRITY');
        expect(res.got.length).toBe(0);
      } finally {
        await db.db.updateTable('data_keys').set({ wrapped: row.wrapped }).where('id', '=', blob.keyId).execute();
      }
      expect((await collect(await blobs.get({ ...ref, blobId: blob.blobId }))).equals(pt)).toBe(true);
    });
  });

  it('a body known to be small is sealed and opened without the worker; a larger one uses it', async () => {
    const sealer = new Sealer(1);
    try {
      const eb = new EncryptedBlobs(createBlobStore({ type: 'fs', dir: blobDir }), keys.dataKeys, {
        sealer,
        chunkSize: CHUNK,
      });
      const small = crypto.randomBytes(INLINE_MAX_BYTES);
      const ref = { objectId: 'small-inline', version: 1 };
      const s = await eb.put(ref, pieces(small), { maxBytes: small.length, sha256: true });
      expect(s.sha256).toBe(crypto.createHash('sha256').update(small).digest('hex'));
      expect((await collect(await eb.get({ ...ref, blobId: s.blobId, keyId: s.keyId }))).equals(small)).toBe(true);
      expect(sealer.running()).toBe(0);
      const big = crypto.randomBytes(INLINE_MAX_BYTES + 1);
      const b = await eb.put({ objectId: 'big-offloaded', version: 1 }, pieces(big), { maxBytes: big.length });
      expect(sealer.running()).toBe(1);
      const bigRef = { objectId: 'big-offloaded', version: 1, blobId: b.blobId };
      expect((await collect(await eb.get(bigRef))).equals(big)).toBe(true);
      // chunks sealed in the worker, opened on this thread: a small range of them
      const part = await collect(await eb.get(bigRef, { start: 5, end: 3 * CHUNK + 7 }));
      expect(part.equals(big.subarray(5, 3 * CHUNK + 7))).toBe(true);
    } finally {
      await sealer.close();
    }
  });

  it('runs 16 concurrent encrypt and decrypt streams clean', async () => {
    const bodies = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(50 * CHUNK + i * 777));
    const puts = await Promise.all(bodies.map((b, i) => blobs.put({ objectId: `c${i}`, version: 1 }, pieces(b))));
    const reads = await Promise.all(
      puts.map(async (p, i) => {
        const s = crypto.createHash('sha256');
        for await (const c of (await blobs.get({
          objectId: `c${i}`,
          version: 1,
          blobId: p.blobId,
        })) as AsyncIterable<Buffer>)
          s.update(c);
        return s.digest('hex');
      }),
    );
    reads.forEach((h, i) => expect(h).toBe(crypto.createHash('sha256').update(bodies[i]!).digest('hex')));
  });

  it('a failing source leaves neither a blob nor a data key', async () => {
    const before = await db.db
      .selectFrom('data_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const src = Readable.from(
      (async function* () {
        yield crypto.randomBytes(3 * CHUNK);
        throw new Error('client went away');
      })(),
    );
    await expect(blobs.put({ objectId: 'dead', version: 1 }, src)).rejects.toThrow();
    const after = await db.db
      .selectFrom('data_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    expect(fs.readdirSync(path.join(blobDir, '.tmp'))).toEqual([]);
  });

  it('delete with the key id crypto-shreds; orphans are collected after their grace period', async () => {
    const b = await blobs.put({ objectId: 'gone', version: 1 }, Readable.from([Buffer.from('bye')]));
    await blobs.delete(b.blobId, b.keyId);
    expect(await blobs.store.stat(b.blobId)).toBeNull();
    await expect(keys.dataKeys.get(b.keyId)).rejects.toMatchObject({ code: 'DATA_KEY_NOT_FOUND' });
    const kept = await blobs.put({ objectId: 'kept', version: 1 }, Readable.from([Buffer.from('keep')]));
    const orphan = await blobs.put({ objectId: 'orphan', version: 1 }, Readable.from([Buffer.from('lost')]));
    const referenced = new Set<string>([kept.blobId]);
    const all: string[] = [];
    for await (const id of blobs.store.list()) all.push(id);
    all.filter((id) => id !== orphan.blobId && id !== kept.blobId).forEach((id) => referenced.add(id));
    // young orphans are spared (their row may be committing)
    expect((await blobs.collectOrphans(async (id) => referenced.has(id), 60_000)).deleted).toEqual([]);
    expect(
      (await blobs.collectOrphans(async (id) => referenced.has(id), 60_000, Date.now() + 120_000)).deleted,
    ).toEqual([orphan.blobId]);
    expect(await blobs.store.stat(kept.blobId)).not.toBeNull();
  });
});
