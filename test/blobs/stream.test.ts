import crypto from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { EncryptStream, type EncryptOptions } from '../../src/blobs/encrypt.js';
import { Sealer } from '../../src/blobs/sealer.js';
import { DecryptStream, type DecryptOptions } from '../../src/blobs/decrypt.js';
import { TAG_BYTES, layout, makeHeader, parseHeader } from '../../src/blobs/format.js';

const C = 4096;
const key = crypto.randomBytes(32);
const ref = { objectId: 'unit', version: 7 };

const sealer = new Sealer();
afterAll(() => sealer.close());
const prefix = crypto.randomBytes(7);

async function encrypt(pt: Buffer, pieces: (b: Buffer) => Buffer[], o: EncryptOptions = {}): Promise<Buffer> {
  return (await encryptWithDigest(pt, pieces, o)).ct;
}
async function encryptWithDigest(
  pt: Buffer,
  pieces: (b: Buffer) => Buffer[],
  o: EncryptOptions = {},
): Promise<{ ct: Buffer; enc: EncryptStream }> {
  const out: Buffer[] = [];
  const h = makeHeader({ ...ref, keyId: 'dk_unitunitunitunitunitu', chunkSize: C, noncePrefix: prefix });
  const enc = new EncryptStream(key, h, o);
  await pipeline(Readable.from(pieces(pt)), enc, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { ct: Buffer.concat(out), enc };
}
async function decrypt(
  ct: Buffer,
  pieces: (b: Buffer) => Buffer[],
  o: Partial<DecryptOptions> = {},
  out: Buffer[] = [],
): Promise<Buffer> {
  await pipeline(
    Readable.from(pieces(ct)),
    new DecryptStream({ expect: ref, getKey: async () => Buffer.from(key), ...o }),
    new Writable({ write: (c: Buffer, _e, cb) => (out.push(Buffer.from(c)), cb()) }),
  );
  return Buffer.concat(out);
}
/** pieces of one frame each (ciphertext ‖ tag), each in an ArrayBuffer of its own: as FsBlobStore reads them */
const frames = (b: Buffer) => {
  const H = b.readUInt16BE(6);
  const o = [Buffer.from(b.subarray(0, H))];
  for (let i = H; i < b.length; i += C + TAG_BYTES) {
    const f = Buffer.allocUnsafeSlow(Math.min(C + TAG_BYTES, b.length - i));
    b.copy(f, 0, i, i + f.length);
    o.push(f);
  }
  return o;
};
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const randomPieces = (max: number) => (b: Buffer) => {
  const o: Buffer[] = [];
  for (let i = 0; i < b.length;) {
    const n = 1 + crypto.randomInt(max);
    o.push(b.subarray(i, i + n));
    i += n;
  }
  return o;
};
const whole = (b: Buffer) => [b];

describe('streaming blob format, in memory', () => {
  it('round-trips every size near the chunk boundaries whatever the piece sizes on either side', async () => {
    for (const n of [
      0,
      1,
      15,
      16,
      17,
      31,
      32,
      33,
      C - 17,
      C - 16,
      C - 1,
      C,
      C + 1,
      C + 16,
      C + 17,
      2 * C - 1,
      2 * C,
      3 * C + 33,
    ]) {
      const pt = crypto.randomBytes(n);
      for (const [inP, outP] of [
        [whole, whole],
        [randomPieces(7), randomPieces(3)],
        [randomPieces(5000), (b: Buffer) => [...b].map((x) => Buffer.from([x]))], // one byte at a time
      ] as const) {
        const ct = await encrypt(pt, inP);
        const h = parseHeader(ct, ref);
        expect(layout(h, ct.length)).toEqual({ chunks: Math.ceil(n / C), plaintextSize: n });
        expect(ct.length).toBe(h.bytes.length + n + (Math.ceil(n / C) + 1) * TAG_BYTES);
        expect((await decrypt(ct, outP)).equals(pt)).toBe(true);
        // opened in the worker, hashed on the way: the same plaintext, and the digest it checked
        let seen: { sha256: string; size: number } | undefined;
        const verify = (got: { sha256: string; size: number }) => void (seen = got);
        expect((await decrypt(ct, outP, { sealer, verify })).equals(pt)).toBe(true);
        expect(seen).toEqual({ sha256: sha(pt), size: n });
        // sealed in the worker, with the plaintext's hash: the same bytes
        const off = await encryptWithDigest(pt, inP, { sealer, sha256: true });
        expect(off.ct.equals(ct)).toBe(true);
        expect(off.enc.sha256).toBe(crypto.createHash('sha256').update(pt).digest('hex'));
      }
    }
    const inl = await encryptWithDigest(Buffer.from('abc'), whole, { sha256: true });
    expect(inl.enc.sha256).toBe(crypto.createHash('sha256').update('abc').digest('hex'));
  });

  it('16 concurrent streams over 3 sealing workers: each blob and digest is its own', async () => {
    const three = new Sealer(3);
    const bodies = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(5 * C + i * 333));
    const outs = await Promise.all(
      bodies.map((b) => encryptWithDigest(b, randomPieces(3000), { sealer: three, sha256: true })),
    );
    for (const [i, o] of outs.entries()) {
      expect(o.enc.sha256).toBe(crypto.createHash('sha256').update(bodies[i]!).digest('hex'));
      expect((await decrypt(o.ct, whole)).equals(bodies[i]!)).toBe(true);
    }
    await three.close();
  });

  it('streams sharing a sealing worker split its chunks in flight, and each still opens its own blob', async () => {
    const one = new Sealer(1);
    const aad = Buffer.from('aad');
    const alone = one.begin(key, aad, false);
    expect(alone.depth(3)).toBe(3);
    const others = Array.from({ length: 7 }, () => one.begin(key, aad, false));
    expect(alone.depth(3)).toBe(1);
    for (const s of others.slice(1)) s.drop();
    expect(alone.depth(3)).toBe(2);
    others[0]!.drop();
    expect(alone.depth(3)).toBe(3);
    alone.drop();
    const bodies = Array.from({ length: 8 }, (_, i) => crypto.randomBytes(6 * C + i * 101));
    const cts = await Promise.all(bodies.map((b) => encrypt(b, whole)));
    const got = await Promise.all(cts.map((ct) => decrypt(ct, frames, { sealer: one, consumeInput: true })));
    for (const [i, g] of got.entries()) expect(g.equals(bodies[i]!)).toBe(true);
    await one.close();
  });

  it('a sealing worker that dies fails the stream it was sealing, and the next stream gets a new worker', async () => {
    const own = new Sealer(1);
    const h = makeHeader({ ...ref, keyId: 'dk_unitunitunitunitunitu', chunkSize: C });
    const input = new Readable({ read() {} });
    const enc = new EncryptStream(key, h, { sealer: own });
    const run = pipeline(input, enc, new Writable({ write: (_c: Buffer, _e, cb) => cb() }));
    input.push(crypto.randomBytes(3 * C));
    await new Promise((r) => setTimeout(r, 50));
    await (own as unknown as { lanes: { worker: { terminate(): Promise<number> } }[] }).lanes[0]!.worker.terminate();
    input.push(crypto.randomBytes(3 * C));
    input.push(null);
    await expect(run).rejects.toThrow(/sealing worker exited|sealer/);
    const pt = crypto.randomBytes(2 * C + 5);
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([pt]),
      new EncryptStream(key, makeHeader({ ...ref, keyId: 'dk_unitunitunitunitunitu', chunkSize: C }), { sealer: own }),
      new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }),
    );
    expect((await decrypt(Buffer.concat(out), whole)).equals(pt)).toBe(true);
    await own.close();
  });

  it('opening in the worker: a frame read whole is handed over without a copy; a tampered chunk is never released', async () => {
    const pt = crypto.randomBytes(5 * C + 77);
    const ct = await encrypt(pt, whole);
    const pieces = frames(ct);
    const out: Buffer[] = [];
    expect((await decrypt(ct, () => pieces, { sealer, consumeInput: true }, out)).equals(pt)).toBe(true);
    // the frames were transferred to the worker (detached here), not copied
    expect(pieces.slice(1, 6).every((f) => f.length === 0)).toBe(true);
    const H = ct.readUInt16BE(6);
    // byte flipped (from the end of the header) → plaintext released before the error
    for (const [at, released] of [
      [C - 1, 0], // chunk 0
      [2 * (C + TAG_BYTES) + 5, 2 * C], // chunk 2
      [ct.length - H - 17, 5 * C], // the last (partial) chunk's tag
      [ct.length - H - 1, pt.length], // the end chunk: every data chunk verified, the end refused
    ] as const) {
      const bad = Buffer.from(ct);
      bad[H + at]! ^= 1;
      const got: Buffer[] = [];
      await expect(decrypt(bad, frames, { sealer, consumeInput: true }, got)).rejects.toMatchObject({
        code: 'KEYS_INTEGRITY',
      });
      expect(Buffer.concat(got).equals(pt.subarray(0, released))).toBe(true);
    }
  });

  it('a digest that does not match ends the stream before its last piece, inline and in the worker', async () => {
    for (const pt of [crypto.randomBytes(3 * C + 5), crypto.randomBytes(C), Buffer.alloc(0)]) {
      const ct = await encrypt(pt, whole);
      for (const o of [{}, { sealer }, { sealer, consumeInput: true }]) {
        const got: Buffer[] = [];
        const refuse = () => Object.assign(new Error('digest mismatch'), { code: 'TEST_MISMATCH' });
        await expect(
          decrypt(ct, o.sealer ? frames : randomPieces(900), { ...o, verify: refuse }, got),
        ).rejects.toMatchObject({ code: 'TEST_MISMATCH' });
        expect(Buffer.concat(got).length).toBeLessThan(Math.max(1, pt.length));
        expect(pt.subarray(0, Buffer.concat(got).length).equals(Buffer.concat(got))).toBe(true);
      }
    }
  });

  it('16 concurrent streams opened over 3 workers: each gets its own plaintext and digest', async () => {
    const three = new Sealer(3);
    const bodies = Array.from({ length: 16 }, (_, i) => crypto.randomBytes(4 * C + i * 555));
    const cts = await Promise.all(bodies.map((b) => encrypt(b, whole)));
    const seen: string[] = [];
    const outs = await Promise.all(
      cts.map((ct, i) =>
        decrypt(ct, frames, { sealer: three, consumeInput: true, verify: (g) => void (seen[i] = g.sha256) }),
      ),
    );
    for (const [i, o] of outs.entries()) {
      expect(o.equals(bodies[i]!)).toBe(true);
      expect(seen[i]).toBe(sha(bodies[i]!));
    }
    await three.close();
  });

  it('never leaves a valid-looking prefix: every truncation of a blob fails', async () => {
    const pt = crypto.randomBytes(2 * C + 100);
    const ct = await encrypt(pt, whole);
    const H = ct.readUInt16BE(6);
    for (let cut = H; cut < ct.length; cut += cut < H + 40 ? 1 : 97) {
      await expect(decrypt(ct.subarray(0, cut), randomPieces(300))).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
      if ((cut - H) % 41 === 0)
        await expect(decrypt(ct.subarray(0, cut), randomPieces(300), { sealer })).rejects.toMatchObject({
          code: 'KEYS_INTEGRITY',
        });
    }
    await expect(
      decrypt(Buffer.concat([ct, Buffer.alloc(1)]), frames, { sealer, consumeInput: true }),
    ).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    // and appending anything fails too
    await expect(decrypt(Buffer.concat([ct, Buffer.alloc(1)]), whole)).rejects.toMatchObject({
      code: 'KEYS_INTEGRITY',
    });
    await expect(decrypt(Buffer.concat([ct, ct.subarray(ct.length - 16)]), whole)).rejects.toMatchObject({
      code: 'KEYS_INTEGRITY',
    });
  });
});
