/**
 * The BlobStore contract (src/storage/types.ts), run against every implementation.
 * A store under test that cannot be started fails here; nothing is skipped.
 */
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/storage/types.js';

export interface StoreUnderTest {
  store: BlobStore;
  cleanup(): Promise<void>;
}

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}
const id = () => `t_${crypto.randomBytes(9).toString('base64url')}`;
/** a source that yields `good` then fails */
function failing(good: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield good;
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('source died');
    })(),
  );
}
async function listAll(s: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const x of s.list()) out.push(x);
  return out;
}

export function blobStoreContract(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let t: StoreUnderTest;
    beforeAll(async () => {
      t = await make();
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    it('stores and returns exactly the bytes written, with their size', async () => {
      for (const n of [0, 1, 4096, 3 * 1024 * 1024 + 7]) {
        const b = crypto.randomBytes(n);
        const k = id();
        expect(await t.store.put(k, Readable.from([b.subarray(0, n >> 1), b.subarray(n >> 1)]))).toEqual({ size: n });
        expect((await bytes(await t.store.get(k))).equals(b)).toBe(true);
        expect(await t.store.stat(k)).toEqual({ size: n });
      }
    });

    it('prefix: the stored size and the first bytes in one read; a small blob whole; null when missing', async () => {
      for (const n of [0, 1, 4096, 100_000, 300_000]) {
        const b = crypto.randomBytes(n);
        const k = id();
        await t.store.put(k, Readable.from([b]));
        const p = await t.store.prefix(k, 262_144);
        expect(p?.size).toBe(n);
        expect(p!.bytes.equals(b.subarray(0, 262_144))).toBe(true);
      }
      expect(await t.store.prefix(id(), 1024)).toBeNull();
    });

    it('reads byte ranges [start, end)', async () => {
      const b = crypto.randomBytes(100_000);
      const k = id();
      await t.store.put(k, Readable.from([b]));
      for (const [s, e] of [
        [0, 1],
        [10, 20],
        [99_999, 100_000],
        [0, 100_000],
        [5, 5],
      ] as const) {
        expect((await bytes(await t.store.get(k, { start: s, end: e }))).equals(b.subarray(s, e))).toBe(true);
      }
      await expect(t.store.get(k, { start: 10, end: 100_001 })).rejects.toMatchObject({
        code: 'RANGE_NOT_SATISFIABLE',
      });
      await expect(t.store.get(k, { start: 20, end: 10 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    });

    it('is write-once: an existing id is refused and left untouched', async () => {
      const k = id();
      const a = crypto.randomBytes(1000);
      await t.store.put(k, Readable.from([a]));
      await expect(t.store.put(k, Readable.from([crypto.randomBytes(10)]))).rejects.toMatchObject({
        code: 'BLOB_EXISTS',
      });
      expect((await bytes(await t.store.get(k))).equals(a)).toBe(true);
    });

    it('two concurrent puts of one id: exactly one wins, the blob is whole', async () => {
      const k = id();
      const bodies = [crypto.randomBytes(300_000), crypto.randomBytes(300_000)];
      const r = await Promise.allSettled(
        bodies.map((b) => t.store.put(k, Readable.from([b.subarray(0, 1000), b.subarray(1000)]))),
      );
      expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      const got = await bytes(await t.store.get(k));
      expect(got.equals(bodies[0]!) || got.equals(bodies[1]!)).toBe(true);
    });

    it('a source that fails mid-stream leaves nothing behind under that id', async () => {
      const k = id();
      await expect(t.store.put(k, failing(crypto.randomBytes(200_000)))).rejects.toThrow();
      expect(await t.store.stat(k)).toBeNull();
      expect(await listAll(t.store)).not.toContain(k);
      // and the id can be written afterwards
      await t.store.put(k, Readable.from([Buffer.from('ok')]));
      expect((await bytes(await t.store.get(k))).toString()).toBe('ok');
    });

    it('missing ids: get fails with BLOB_NOT_FOUND, stat is null, delete is a no-op', async () => {
      const k = id();
      await expect(t.store.get(k)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND', httpStatus: 404 });
      expect(await t.store.stat(k)).toBeNull();
      await t.store.delete(k);
    });

    it('deletes, and lists what it holds', async () => {
      const ks = [id(), id(), id()];
      for (const k of ks) await t.store.put(k, Readable.from([Buffer.from(k)]));
      expect(await listAll(t.store)).toEqual(expect.arrayContaining(ks));
      await t.store.delete(ks[1]!);
      const l = await listAll(t.store);
      expect(l).toContain(ks[0]);
      expect(l).not.toContain(ks[1]);
      expect(await t.store.stat(ks[1]!)).toBeNull();
    });

    it('refuses ids that are not [A-Za-z0-9_-]{1,128} (never a path)', async () => {
      for (const bad of ['', '../x', 'a/b', 'x'.repeat(129), 'a b', '.tmp']) {
        await expect(t.store.put(bad, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
          code: 'BLOB_ID_INVALID',
        });
        await expect(t.store.get(bad)).rejects.toMatchObject({ code: 'BLOB_ID_INVALID' });
      }
    });
  });
}
