import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { BlobStore } from '../types.js';
import { BLOB_ID, storageErrors } from '../errors.js';
import { SyncingFile } from '../../shared/syncing-file.js';
import { isNoSpace, storageFull } from '../../shared/disk.js';
import { handedOver } from '../../shared/buffers.js';
import { pumped } from '../../shared/pump.js';

const TMP = '.tmp';
// the callback API, promisified: a FileHandle costs more per call on small reads
const fdOpen = promisify(fs.open);
const fdStat = promisify(fs.fstat);
const fdRead = promisify(fs.read);
const fdClose = promisify(fs.close);
/**
 * BlobStore on a local filesystem (invariant 7: crash-safe writes).
 *
 * put: stream to `<dir>/.tmp/<id>.<random>`, fsync the file, then `link()` it to its final name
 * (which, unlike rename, refuses to replace an existing blob: write-once even under races), unlink
 * the temp name and fsync the final name's directory. A kill -9 or a power cut at any point leaves
 * either nothing under the final name or the whole blob; temp names left behind (an unlink the
 * power cut undid: the temp directory is not flushed, nothing depends on it) are removed by
 * `collectTemp`. Final names
 * are sharded by the first two characters of the id: `<dir>/<id[0..2]>/<id>`.
 */
export class FsBlobStore implements BlobStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, TMP), { recursive: true, mode: 0o700 });
  }

  private file(id: string): string {
    if (!BLOB_ID.test(id)) throw storageErrors.badId(id);
    return path.join(this.dir, id.slice(0, 2).padEnd(2, '_'), id);
  }

  async put(id: string, data: Readable): Promise<{ size: number }> {
    const final = this.file(id);
    if (fs.existsSync(final)) {
      data.destroy();
      throw storageErrors.exists(id);
    }
    const tmp = path.join(this.dir, TMP, `${id}.${crypto.randomBytes(6).toString('hex')}`);
    let size = 0;
    try {
      const out = new SyncingFile(tmp, { free: handedOver(data) });
      await pumped(data, out);
      size = out.bytesWritten;
      // a new shard directory's own name is flushed too, or a power cut could lose the whole shard
      if (await fsp.mkdir(path.dirname(final), { recursive: true, mode: 0o700 })) await fsyncDir(this.dir);
      try {
        await fsp.link(tmp, final);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw storageErrors.exists(id);
        throw e;
      }
      await fsp.unlink(tmp);
      await fsyncDir(path.dirname(final));
      return { size };
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      if ((e as { code?: string }).code === 'BLOB_EXISTS') throw e;
      if (isNoSpace(e)) throw storageFull('blobs', this.dir, e);
      if ((e as NodeJS.ErrnoException).syscall)
        throw storageErrors.io(`cannot write blob ${id}: ${(e as NodeJS.ErrnoException).code}`, e);
      throw e;
    }
  }

  async get(id: string, range?: { start: number; end: number }, o: { readSize?: number } = {}): Promise<Readable> {
    const f = this.file(id);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(f, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw storageErrors.notFound(id);
      throw storageErrors.io(`cannot read blob ${id}: ${(e as NodeJS.ErrnoException).code}`, e);
    }
    if (range) {
      const size = (await fh.stat()).size;
      if (!(
        Number.isInteger(range.start) &&
        Number.isInteger(range.end) &&
        range.start >= 0 &&
        range.start <= range.end &&
        range.end <= size
      )) {
        await fh.close();
        throw storageErrors.badRange(`range [${range.start}, ${range.end}) is outside blob ${id} (${size} bytes)`);
      }
      if (range.start === range.end) {
        await fh.close();
        const { Readable } = await import('node:stream');
        return Readable.from([]);
      }
      return fh.createReadStream({ start: range.start, end: range.end - 1, highWaterMark: o.readSize ?? 1 << 20 });
    }
    return fh.createReadStream({ highWaterMark: o.readSize ?? 1 << 20 });
  }

  /**
   * One open, one fstat, one read, one close, with the callback API (promisified): for a blob of
   * 100 KiB this costs about a quarter of the CPU of a stat, an open and a read stream
   * (bench/RESULTS.md, design measurements).
   */
  async prefix(id: string, max: number): Promise<{ size: number; bytes: Buffer } | null> {
    const f = this.file(id);
    const failed = (e: NodeJS.ErrnoException) => storageErrors.io(`cannot read blob ${id}: ${e.code ?? e.message}`, e);
    let fd: number;
    try {
      fd = await fdOpen(f, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw failed(e as NodeJS.ErrnoException);
    }
    try {
      const { size } = await fdStat(fd);
      const bytes = Buffer.allocUnsafe(Math.min(size, max));
      for (let at = 0; at < bytes.length;) {
        const { bytesRead } = await fdRead(fd, bytes, at, bytes.length - at, at);
        if (bytesRead === 0) throw storageErrors.io(`cannot read blob ${id}: it ended before its size`);
        at += bytesRead;
      }
      return { size, bytes };
    } catch (e) {
      throw (e as { code?: string }).code === 'STORAGE_UNAVAILABLE' ? e : failed(e as NodeJS.ErrnoException);
    } finally {
      await fdClose(fd).catch(() => undefined);
    }
  }

  async stat(id: string): Promise<{ size: number } | null> {
    try {
      return { size: (await fsp.stat(this.file(id))).size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async delete(id: string): Promise<void> {
    const f = this.file(id);
    try {
      await fsp.unlink(f);
      await fsyncDir(path.dirname(f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageErrors.io(`cannot delete blob ${id}`, e);
    }
  }

  async *list(): AsyncIterable<string> {
    for (const shard of (await fsp.readdir(this.dir, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      if (!shard.isDirectory() || shard.name === TMP) continue;
      for (const name of (await fsp.readdir(path.join(this.dir, shard.name))).sort())
        if (BLOB_ID.test(name)) yield name;
    }
  }

  /** Removes temp files of writes that died (kill -9) more than `olderThanMs` ago. */
  async collectTemp(olderThanMs: number, nowMs = Date.now()): Promise<number> {
    let n = 0;
    for (const f of await fsp.readdir(path.join(this.dir, TMP))) {
      const p = path.join(this.dir, TMP, f);
      const st = await fsp.stat(p).catch(() => null);
      if (st && nowMs - st.mtimeMs > olderThanMs) {
        await fsp.rm(p, { force: true });
        n++;
      }
    }
    return n;
  }

  /** mtime of a blob (orphan collection spares young blobs whose row may not be committed yet). */
  async mtimeMs(id: string): Promise<number | null> {
    const st = await fsp.stat(this.file(id)).catch(() => null);
    return st ? st.mtimeMs : null;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
