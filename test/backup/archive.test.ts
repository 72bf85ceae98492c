import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { packArchive, unpackArchive, type Member } from '../../src/backup/archive.js';
import type { Manifest } from '../../src/backup/format.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-archive-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const base = { format: 1, backupId: 'b1' } as unknown as Omit<Manifest, 'members'>;
/** members of sizes around the 512-byte block, one with a name too long for a ustar header, delivered in two chunks each */
const bodies: [string, Buffer][] = [
  ['blobs/empty', Buffer.alloc(0)],
  ['blobs/a', crypto.randomBytes(511)],
  ['blobs/b', crypto.randomBytes(512)],
  ['blobs/c', crypto.randomBytes(513)],
  [`blobs/${'L'.repeat(180)}`, crypto.randomBytes(70_000)],
];
const members = (list: [string, Buffer][], lie = 0) =>
  (async function* (): AsyncGenerator<Member> {
    for (const [name, b] of list)
      yield {
        name,
        size: b.length + lie,
        open: async () =>
          Readable.from([b.subarray(0, b.length >> 1), b.subarray(b.length >> 1)].filter((x) => x.length)),
      };
  })();

async function pack(list: [string, Buffer][], lie = 0) {
  const { stream, done } = packArchive(members(list, lie), base, new Date(1_700_000_000_000));
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c)); // a chunk is only valid until the next one
  return { tar: Buffer.concat(chunks), seen: await done };
}

describe('archive writer', () => {
  it('writes a POSIX tar that GNU tar lists and unpacks byte for byte, long names included, manifest last', async () => {
    const { tar, seen } = await pack(bodies);
    expect(tar.length % 512).toBe(0);
    expect(seen.map((s) => [s.name, s.size, s.sha256])).toEqual(
      bodies.map(([n, b]) => [n, b.length, crypto.createHash('sha256').update(b).digest('hex')]),
    );
    const file = path.join(dir, 'a.tar');
    fs.writeFileSync(file, tar);
    expect(execFileSync('tar', ['-tf', file]).toString().trim().split('\n')).toEqual([
      ...bodies.map(([n]) => n),
      'manifest.json',
    ]);
    const out = path.join(dir, 'x');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xf', file, '-C', out]);
    for (const [n, b] of bodies) expect(fs.readFileSync(path.join(out, n)).equals(b)).toBe(true);
    expect((JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest).members).toEqual(seen);
    // and our own reader agrees
    const got = new Map<string, Buffer>();
    const r = await unpackArchive(
      (async function* () {
        yield tar;
      })(),
      async (name, _size, s) => {
        const cs: Buffer[] = [];
        for await (const c of s) cs.push(c as Buffer);
        got.set(name, Buffer.concat(cs));
      },
      'test',
    );
    expect(r.seen).toEqual(seen);
    for (const [n, b] of bodies) expect(got.get(n)!.equals(b)).toBe(true);
  });

  it('fails with BACKUP_INTEGRITY when a member is shorter or longer than declared', async () => {
    await expect(pack(bodies.slice(1, 2), 1)).rejects.toMatchObject({
      code: 'BACKUP_INTEGRITY',
      message: expect.stringContaining('shrank'),
    });
    await expect(pack(bodies.slice(1, 2), -1)).rejects.toMatchObject({
      code: 'BACKUP_INTEGRITY',
      message: expect.stringContaining('grew'),
    });
  });

  it('frees (detaches) the chunks of a member that owns them once consumed, and only those', async () => {
    const body = crypto.randomBytes(3 * 8192);
    const owned = [0, 1, 2].map((i) => {
      const b = Buffer.from(new ArrayBuffer(8192)); // a whole ArrayBuffer of its own, as file reads give
      body.copy(b, 0, i * 8192, (i + 1) * 8192);
      return b;
    });
    const shared = Buffer.from(body);
    const list: Member[] = [
      { name: 'blobs/owned', size: body.length, ownChunks: true, open: async () => Readable.from(owned) },
      { name: 'blobs/shared', size: body.length, open: async () => Readable.from([shared]) },
    ];
    const { stream, done } = packArchive(
      (async function* () {
        yield* list;
      })(),
      base,
      new Date(1_700_000_000_000),
    );
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(Buffer.from(c));
    const seen = await done;
    const sha = crypto.createHash('sha256').update(body).digest('hex');
    expect(seen.map((m) => m.sha256)).toEqual([sha, sha]);
    expect(owned.map((b) => b.buffer.byteLength)).toEqual([0, 0, 0]);
    expect(shared.equals(body)).toBe(true);
    const tar = Buffer.concat(chunks);
    expect(tar.subarray(512, 512 + body.length).equals(body)).toBe(true);
  });
});
