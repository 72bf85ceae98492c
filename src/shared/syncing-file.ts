import fsp from 'node:fs/promises';
import { Writable } from 'node:stream';
import { release } from './buffers.js';

/** a background fdatasync every so many bytes written (see SyncingFile) */
const SYNC_EVERY = 32 * 1024 * 1024;

/**
 * A file written durably (a blob's temp file, a downloaded document's partial file): buffered
 * pieces go out in one `writev`, and every SYNC_EVERY bytes an fdatasync starts in the background
 * (one at a time, never awaited by the writes), so the kernel writes the file to disk while the
 * rest still streams in; the fdatasync at the end (`_final`, before the file is closed), which
 * the caller's durability rests on, then only waits for the tail instead of the whole file. A
 * failed background sync fails the write.
 */
export class SyncingFile extends Writable {
  bytesWritten = 0;
  private fh: fsp.FileHandle | undefined;
  private sinceSync = 0;
  private syncing: Promise<void> | undefined;
  private syncError: unknown;

  private readonly free: boolean;
  private readonly flags: string;

  /**
   * `free`: the pieces are ours once written: buffers of their own are detached (see below);
   * `flags`: how the file is opened (default `wx`: a new file), always mode 0600.
   */
  constructor(
    private readonly path: string,
    o: { free?: boolean; flags?: string } = {},
  ) {
    super({ highWaterMark: 1 << 20 });
    this.free = o.free === true;
    this.flags = o.flags ?? 'wx';
  }

  override _construct(cb: (e?: Error | null) => void): void {
    fsp.open(this.path, this.flags, 0o600).then((fh) => {
      this.fh = fh;
      cb();
    }, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    (async () => {
      await this.syncing;
      if (this.syncError !== undefined) throw this.syncError;
      await this.fh!.datasync();
      const fh = this.fh!;
      this.fh = undefined;
      await fh.close();
    })().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return cb(err);
    Promise.resolve(this.syncing)
      .then(() => fh.close())
      .then(
        () => cb(err),
        () => cb(err),
      );
  }

  private async writeAll(bufs: Buffer[]): Promise<void> {
    let total = 0;
    for (const b of bufs) total += b.length;
    let done = (await this.fh!.writev(bufs)).bytesWritten;
    // a short write (rare on files): the rest, piece by piece
    for (let i = 0, at = 0; done < total && i < bufs.length; at += bufs[i]!.length, i++) {
      const b = bufs[i]!;
      if (at + b.length <= done) continue;
      for (let off = done - at; off < b.length;) {
        const n = (await this.fh!.write(b, off, b.length - off)).bytesWritten;
        off += n;
        done += n;
      }
    }
    // Written pieces that are whole buffers go back to the system now rather than at V8's next
    // full collection: streamed buffers often outlive a young collection (they wait for the
    // disk), and V8 then runs a full collection for every ~64 MiB of them.
    if (this.free) for (const b of bufs) release(b);
    this.bytesWritten += total;
    this.sinceSync += total;
    if (this.sinceSync >= SYNC_EVERY && !this.syncing) {
      this.sinceSync = 0;
      this.syncing = this.fh!.datasync().then(
        () => {
          this.syncing = undefined;
        },
        (e: unknown) => {
          this.syncing = undefined;
          this.syncError ??= e;
        },
      );
    }
    if (this.syncError !== undefined) throw this.syncError;
  }
}
