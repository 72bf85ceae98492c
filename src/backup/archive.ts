import crypto from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { release } from '../shared/buffers.js';
import { backupErrors } from './errors.js';
import { MANIFEST, type Manifest, type ManifestMember } from './format.js';

/**
 * The archive: a POSIX tar stream of the members (written by `packArchive` below, read with
 * tar-stream), then `manifest.json` with every member's size and
 * SHA-256. Streamed: nothing is staged whole on disk.
 */
export interface Member {
  name: string;
  size: number;
  open(): Promise<Readable>;
  /**
   * The chunks `open()`'s stream yields are fresh buffers nobody else holds (file reads): each is
   * freed (released) as soon as the consumer is done with it, instead of at V8's next collection
   * (in the backup engine, those that outlived a young collection were otherwise only freed by
   * mark-compacts).
   */
  ownChunks?: boolean;
}

/** Names an archive may hold; anything else is refused when reading (no path tricks). */
const MEMBER_NAME =
  /^(db\/coffre\.db|config\/config\.json|audit\/checkpoints\.json|manifest\.json|blobs\/[A-Za-z0-9._-]{1,200})$/;
export const isMemberName = (n: string) => MEMBER_NAME.test(n) && !n.endsWith('/.') && !n.includes('/..');

const BLOCK = 512;
/** padding, and the two zero blocks that end an archive */
const ZEROS = Buffer.alloc(2 * BLOCK);
const oct = (v: number, n: number) => `${v.toString(8).padStart(n, '0').slice(-n)} `;

/** one ustar header block, as tar-stream 3 writes it (uid/gid 0, no user names); `null` if `name` needs a pax record */
function ustarHeader(name: string, size: number, mode: number, mtime: number, typeflag: string): Buffer | null {
  let prefix = '';
  let rest = name;
  while (rest.length > 100) {
    const i = rest.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? `/${rest.slice(0, i)}` : rest.slice(0, i);
    rest = rest.slice(i + 1);
  }
  if (prefix.length > 155) return null;
  const b = Buffer.alloc(BLOCK);
  b.write(rest, 0, 'latin1');
  b.write(oct(mode & 0o7777, 6), 100);
  b.write(oct(0, 6), 108);
  b.write(oct(0, 6), 116);
  if (size.toString(8).length > 11) {
    b[124] = 0x80; // base-256 size (GNU/star extension), as tar-stream writes it
    let v = size;
    for (let i = 11; i > 0; i--) {
      b[124 + i] = v & 0xff;
      v = Math.floor(v / 0x100);
    }
  } else b.write(oct(size, 11), 124);
  b.write(oct(Math.floor(mtime / 1000) | 0, 11), 136);
  b.write(typeflag, 156);
  b.write('ustar\u000000', 257, 'latin1');
  b.write(oct(0, 6), 329);
  b.write(oct(0, 6), 337);
  if (prefix) b.write(prefix, 345, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < BLOCK; i++) sum += b[i]!;
  b.write(oct(sum, 6), 148);
  return b;
}

/** pax `path` record: "<len> path=<name>\n", where len counts itself */
function paxPath(name: string): Buffer {
  const body = ` path=${name}\n`;
  let digits = String(body.length).length;
  if (body.length + digits >= 10 ** digits) digits++;
  return Buffer.from(`${body.length + digits}${body}`, 'latin1');
}

/** the header block(s) of a regular file member: a pax path record first when the name does not fit ustar */
function* fileHeader(name: string, size: number, mtime: number): Generator<Buffer> {
  const h = ustarHeader(name, size, 0o600, mtime, '0');
  if (h) return void (yield h);
  const pax = paxPath(name);
  yield ustarHeader('PaxHeader', pax.length, 0o600, mtime, 'x')!;
  yield pax;
  if (pax.length % BLOCK) yield ZEROS.subarray(0, BLOCK - (pax.length % BLOCK));
  yield ustarHeader('PaxHeader', size, 0o600, mtime, '0')!;
}

/**
 * Packs `members` then the manifest, as a POSIX tar stream of the members' own chunks: the
 * headers are written here and each chunk read from a member goes out as it is (no tar library
 * stream, no copy: tar-stream's pack and the stream plumbing around it cost more CPU per GiB than
 * the encryption; figures: bench/RESULTS.md, "Design measurements"). A yielded chunk is valid until the next one is requested. `mtime`
 * is fixed (the backup's time) so the archive depends only on the content. A member whose size
 * changed while being read fails the backup.
 */
export function packArchive(
  members: AsyncIterable<Member>,
  manifest: Omit<Manifest, 'members'>,
  mtime: Date,
): { stream: AsyncGenerator<Buffer> & { destroy(): void }; done: Promise<ManifestMember[]> } {
  let settle!: { resolve: (m: ManifestMember[]) => void; reject: (e: unknown) => void };
  const done = new Promise<ManifestMember[]>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);
  const t = mtime.getTime();
  async function* gen(): AsyncGenerator<Buffer> {
    const seen: ManifestMember[] = [];
    let finished = false;
    try {
      for await (const m of members) {
        if (!isMemberName(m.name)) throw backupErrors.usage(`internal: bad member name ${m.name}`);
        const src = await m.open();
        const hash = crypto.createHash('sha256');
        let n = 0;
        yield* fileHeader(m.name, m.size, t);
        try {
          for await (const c of src as AsyncIterable<Buffer>) {
            n += c.length;
            if (n > m.size)
              throw backupErrors.integrity(`${m.name} grew while being archived (${m.size} bytes expected)`);
            hash.update(c);
            yield c;
            if (m.ownChunks) release(c);
          }
        } finally {
          src.destroy();
        }
        if (n !== m.size)
          throw backupErrors.integrity(`${m.name} shrank while being archived (${n} of ${m.size} bytes)`);
        if (n % BLOCK) yield ZEROS.subarray(0, BLOCK - (n % BLOCK));
        seen.push({ name: m.name, size: m.size, sha256: hash.digest('hex') });
      }
      const json = Buffer.from(JSON.stringify({ ...manifest, members: seen } satisfies Manifest, null, 1));
      yield* fileHeader(MANIFEST, json.length, t);
      yield json;
      if (json.length % BLOCK) yield ZEROS.subarray(0, BLOCK - (json.length % BLOCK));
      yield ZEROS;
      finished = true;
      settle.resolve(seen);
    } catch (e) {
      settle.reject(e);
      throw e;
    } finally {
      if (!finished) settle.reject(backupErrors.io('backup', 'the archive was stopped before its end'));
    }
  }
  const stream = Object.assign(gen(), {
    destroy(this: AsyncGenerator<Buffer>) {
      void this.return(undefined).catch(() => undefined);
    },
  });
  return { stream, done };
}

/**
 * Reads a tar stream: each member's bytes go to `onMember` (which must consume the stream) while
 * being hashed; the manifest (last) is parsed. Returns both for `checkManifest`. Anything but a
 * regular file with an expected name, or a member after the manifest, is BACKUP_INTEGRITY.
 */
export async function unpackArchive(
  plain: AsyncIterable<Uint8Array>,
  onMember: (name: string, size: number, stream: Readable) => Promise<void>,
  label: string,
  maxManifestBytes = 256 * 1024 * 1024,
): Promise<{ manifest: Manifest; seen: ManifestMember[] }> {
  const extract = tar.extract();
  const seen: ManifestMember[] = [];
  let manifest: Manifest | null = null;
  const entries = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      if (manifest) throw backupErrors.integrity(`${label}: member ${h.name} after the manifest`);
      if (h.type !== 'file' || !isMemberName(h.name) || h.size === undefined) {
        throw backupErrors.integrity(`${label}: unexpected archive member ${JSON.stringify(h.name)} (${h.type})`);
      }
      if (h.name === MANIFEST) {
        if (h.size > maxManifestBytes) throw backupErrors.integrity(`${label}: manifest too large`);
        const chunks: Buffer[] = [];
        for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
        try {
          manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest;
        } catch {
          throw backupErrors.integrity(`${label}: manifest is not JSON`);
        }
        continue;
      }
      if (seen.some((s) => s.name === h.name)) throw backupErrors.integrity(`${label}: member ${h.name} appears twice`);
      const hash = crypto.createHash('sha256');
      let n = 0;
      const tap = new PassThrough({ highWaterMark: 1 << 20 });
      const consumer = onMember(h.name, h.size, tap);
      consumer.catch(() => undefined); // awaited below; a failed read must not leave it unhandled
      try {
        await pipeline(
          entry as unknown as Readable,
          async function* (s: AsyncIterable<Buffer>) {
            for await (const c of s) {
              hash.update(c);
              n += c.length;
              yield c;
            }
          },
          tap,
        );
      } catch (e) {
        tap.destroy(e as Error);
        await consumer.catch(() => undefined);
        throw e;
      }
      await consumer;
      seen.push({ name: h.name, size: n, sha256: hash.digest('hex') });
    }
  })();
  const feeding = (async () => {
    try {
      for await (const view of plain) {
        // copies in 1 MiB slices: the producer may reuse its buffer once we ask for the next one
        for (let off = 0; off < view.length; off += 1 << 20) {
          const c = Buffer.from(view.subarray(off, Math.min(off + (1 << 20), view.length)));
          if (!extract.write(c)) await new Promise<void>((r) => extract.once('drain', () => r()));
        }
      }
      extract.end(undefined);
    } catch (e) {
      extract.destroy(e as Error);
      throw e;
    }
  })();
  try {
    await Promise.all([entries, feeding]);
  } catch (e) {
    extract.destroy(e as Error);
    if ((e as { code?: string }).code) throw e;
    throw backupErrors.integrity(`${label}: the archive is not a valid tar stream (${(e as Error).message})`);
  }
  if (!manifest) throw backupErrors.integrity(`${label}: the archive has no manifest (truncated?)`);
  return { manifest, seen };
}
