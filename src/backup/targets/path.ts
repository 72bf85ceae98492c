import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { backupErrors } from '../errors.js';
import { pathSegments, tempName, type BackupTarget, type TargetEntry } from './types.js';

/**
 * A directory on a mounted filesystem (the secondary site's NFS or SMB mount). Atomic puts:
 * temporary file, fsync, link to the final name (fails when it exists, so nothing is ever
 * overwritten), unlink the temporary name, fsync the directory.
 */
export class PathTarget implements BackupTarget {
  readonly display: string;
  constructor(private readonly root: string) {
    this.display = `file://${root}`;
  }

  private abs(p: string, allowRoot = false): string {
    return path.join(this.root, ...pathSegments(p, allowRoot));
  }

  private fail(e: unknown, p: string): never {
    const err = e as NodeJS.ErrnoException;
    const what = this.display;
    switch (err.code) {
      case 'ENOSPC':
      case 'EDQUOT':
        throw backupErrors.full(what, `${err.code} writing ${p}`);
      case 'EEXIST':
      case 'ENOTEMPTY':
        throw backupErrors.exists(what, p);
      case 'ENOENT':
        throw backupErrors.notFound(what, p);
      case 'EIO':
      case 'ESTALE':
      case 'ETIMEDOUT':
      case 'EHOSTDOWN':
        throw backupErrors.unreachable(what, `${err.code} on ${p}`, e);
      default:
        if ((e as { code?: string }).code?.startsWith('TARGET_')) throw e;
        throw backupErrors.io(what, `${err.code ?? 'error'} on ${p}`, e);
    }
  }

  private async checkRoot(): Promise<void> {
    try {
      if (!(await fsp.stat(this.root)).isDirectory()) throw backupErrors.unreachable(this.display, 'not a directory');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT')
        throw backupErrors.unreachable(this.display, 'the directory is absent (is the volume mounted?)');
      this.fail(e, '');
    }
  }

  private async syncDir(dir: string): Promise<void> {
    const fd = await fsp.open(dir, 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
  }

  async put(p: string, data: Buffer | Readable): Promise<{ size: number }> {
    const final = this.abs(p);
    await this.checkRoot();
    const dir = path.dirname(final);
    const tmp = path.join(dir, tempName(path.basename(final)));
    let sent = 0;
    try {
      await fsp.mkdir(dir, { recursive: true });
      const fh = await fsp.open(tmp, 'wx', 0o600);
      try {
        if (Buffer.isBuffer(data)) {
          await fh.writeFile(data);
          sent = data.length;
        } else {
          for await (const c of data as AsyncIterable<Buffer>) {
            await fh.writeFile(c);
            sent += c.length;
          }
        }
        await fh.sync();
        const st = await fh.stat();
        if (st.size !== sent)
          throw backupErrors.io(
            this.display,
            `size check failed for ${p}: wrote ${sent} bytes, the target holds ${st.size}`,
          );
      } finally {
        await fh.close();
      }
      await fsp.link(tmp, final);
      await fsp.unlink(tmp);
      await this.syncDir(dir);
      return { size: sent };
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      this.fail(e, p);
    }
  }

  async get(p: string): Promise<Readable> {
    const f = this.abs(p);
    await this.checkRoot();
    try {
      const fh = await fsp.open(f, 'r');
      return fh.createReadStream({ highWaterMark: 1 << 20 });
    } catch (e) {
      this.fail(e, p);
    }
  }

  async list(dir: string): Promise<TargetEntry[]> {
    const d = this.abs(dir, true);
    await this.checkRoot();
    try {
      const ents = await fsp.readdir(d, { withFileTypes: true });
      const out: TargetEntry[] = [];
      for (const e of ents) {
        if (!e.isFile() && !e.isDirectory()) continue;
        const size = e.isFile() ? (await fsp.stat(path.join(d, e.name))).size : 0;
        out.push({ name: e.name, type: e.isFile() ? 'file' : 'dir', size });
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      this.fail(e, dir);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.abs(from);
    const b = this.abs(to);
    await this.checkRoot();
    try {
      const st = await fsp.stat(a);
      if (st.isFile()) {
        await fsp.link(a, b);
        await fsp.unlink(a);
      } else {
        if (fs.existsSync(b)) throw backupErrors.exists(this.display, to);
        await fsp.mkdir(path.dirname(b), { recursive: true });
        await fsp.rename(a, b);
      }
      await this.syncDir(path.dirname(b));
      if (path.dirname(a) !== path.dirname(b)) await this.syncDir(path.dirname(a));
    } catch (e) {
      this.fail(e, `${from} → ${to}`);
    }
  }

  async remove(p: string): Promise<void> {
    const f = this.abs(p);
    await this.checkRoot();
    try {
      await fsp.rm(f, { recursive: true, force: true });
      await this.syncDir(path.dirname(f)).catch(() => undefined);
    } catch (e) {
      this.fail(e, p);
    }
  }

  async space(): Promise<{ free: number; total: number } | null> {
    await this.checkRoot();
    const s = await fsp.statfs(this.root);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  }

  async close(): Promise<void> {}
}
