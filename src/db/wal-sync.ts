import fs from 'node:fs/promises';

/**
 * Group commit for a SQLite database in WAL mode.
 *
 * The writer connection runs with `synchronous = NORMAL`: SQLite keeps the file consistent across
 * a power loss (it syncs the WAL before each checkpoint and the database file after it) but does
 * not sync the WAL at each commit, which with `FULL` blocks the event loop for one disk flush per
 * transaction. Instead, a caller is answered only once `durable()` resolved: an `fdatasync` of the
 * WAL file that BEGAN AFTER its commit has ended, so the commit's frames are on the disk, as with
 * `FULL`. The flush runs on libuv's thread pool, the event loop goes on, and every commit that ends
 * while a flush runs shares the next one: n concurrent commits cost about two flushes, not n.
 *
 * What a reader may see meanwhile: a commit is visible to other statements as soon as SQLite made
 * it, a few milliseconds before it is durable; a power loss in that window loses it together with
 * every later commit (the WAL is replayed in order up to its last synced frame), so nothing that
 * depends on it survives without it, and no caller was told it was stored.
 */
export class WalSync {
  private file: fs.FileHandle | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private failure: unknown;
  /** flushes begun and ended (a caller's flush must have begun after its commit) */
  started = 0;
  ended = 0;

  constructor(private readonly walPath: string) {}

  /**
   * Resolves once the WAL's content at the time of the call is on the disk. Once a flush failed,
   * every later call fails with that error: the kernel may have dropped the pages it could not
   * write, and a later successful flush would not bring them back.
   */
  durable(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.running) {
      const run = this.flush().finally(() => {
        this.running = undefined;
      });
      this.running = run;
      return run;
    }
    // a flush is running, begun before this commit ended: the next one covers it
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.durable();
      });
    return this.queued;
  }

  private async flush(): Promise<void> {
    this.started++;
    try {
      this.file ??= await fs.open(this.walPath, 'r');
      await this.file.datasync();
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
    this.ended++;
  }

  /** Forgets the open WAL file (its journal mode changed, or the database closes). */
  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.queued]);
    const f = this.file;
    this.file = undefined;
    await f?.close();
  }
}
