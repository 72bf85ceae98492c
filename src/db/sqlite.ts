import type SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import path from 'node:path';
import { AppError } from '../shared/errors.js';
import { isNoSpace, storageFull } from '../shared/disk.js';
import { WalSync } from './wal-sync.js';
import { flushWaived } from './durability.js';

/**
 * SQLite for a server that must keep answering while another process holds the write lock.
 *
 * better-sqlite3 is synchronous: SQLite's own busy handler would sleep on the event loop for as long
 * as the lock is held (every request, health included, would wait). Here SQLite's busy timeout is
 * a few milliseconds and a lock is waited for asynchronously, with back-off, up to `lockWaitMs`;
 * then the statement fails with `DB_BUSY` (503, `Retry-After`).
 *
 * - Writes and transactions go through one writer connection, one at a time (an async mutex, as
 *   kysely's own for SQLite). Transactions begin `IMMEDIATE`: the write lock is taken (and waited
 *   for) at `BEGIN`, before anything was read, so a wait never ends in a stale-snapshot error.
 * - Statements outside a transaction that only read go to a second, query-only connection, without
 *   waiting for the writer: in WAL mode readers are never blocked by a writer, ours or another
 *   process's, so reads keep answering while writes wait or fail.
 * - In WAL mode a change resolves only once it is on the disk, flushed off the event loop and
 *   shared by the changes that end together (group commit: src/db/wal-sync.ts).
 */

/** SQLite's own (blocking) busy wait, per attempt */
export const SQLITE_BUSY_SPIN_MS = 2;
/** how long a refused write is worth waiting before trying again (Retry-After, seconds) */
export const DB_BUSY_RETRY_AFTER_S = 2;

export interface BusyEvent {
  /** how long the statement waited before giving up */
  waitedMs: number;
}

export interface SqliteOptions {
  /** the database file (named in errors) */
  file: string;
  /** total time a statement waits (asynchronously) for another process's lock */
  lockWaitMs: number;
  /** called when a statement gave up (DB_BUSY) */
  onBusy?: (e: BusyEvent) => void;
  /** called when a write failed for lack of space (STORAGE_FULL) */
  onFull?: (e: AppError) => void;
  /** called when SQLite found the file damaged (DB_CORRUPT) */
  onCorrupt?: (e: AppError) => void;
}

/** The WAL could not be flushed: what was committed may not be on the disk, so no change is accepted any more. */
export const dbSyncFailed = (file: string, cause: unknown): AppError =>
  new AppError(
    'DB_SYNC_FAILED',
    `the database journal of ${file} could not be written to the disk (${String((cause as { code?: unknown }).code ?? 'I/O error')}); changes are refused until the appliance restarts`,
    {
      httpStatus: 503,
      expose: true,
      hint: 'check the disk (dmesg, SMART) and restart once it is healthy: SQLite replays its journal up to the last change that reached the disk',
      cause,
    },
  );

export const dbBusy = (waitedMs: number, cause?: unknown): AppError =>
  new AppError(
    'DB_BUSY',
    `the database is locked by another process (waited ${Math.round(waitedMs)} ms); nothing was changed`,
    {
      httpStatus: 503,
      expose: true,
      retryAfterS: DB_BUSY_RETRY_AFTER_S,
      hint: 'try again in a few seconds; if it lasts, find the process holding the database file (fuser, lsof) — a sqlite3 shell or a backup tool left in a transaction',
      cause,
    },
  );

/** The file is damaged: SQLite's code only, never its text (which may quote the bad bytes). */
export const dbCorrupt = (file: string, why: string, cause?: unknown): AppError =>
  new AppError('DB_CORRUPT', `the database file ${file} is damaged (${why}); changes are refused`, {
    httpStatus: 503,
    expose: true,
    hint: 'keep a copy of the file as evidence and restore the latest backup (docs/disaster-recovery.md)',
    cause,
  });
const isCorrupt = (e: unknown): boolean =>
  /^SQLITE_(CORRUPT|NOTADB)/.test(String((e as { code?: unknown }).code ?? ''));

const isBusy = (e: unknown): boolean => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown }).code ?? ''));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An async mutex: the writer connection serves one transaction (or write) at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

/** prepared statements per connection: preparing costs more than running most of our statements */
const statements = new WeakMap<SQLite.Database, Map<string, SQLite.Statement>>();
const MAX_STATEMENTS = 2000;

function prepared(db: SQLite.Database, sql: string): SQLite.Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let stmt = m.get(sql);
  if (!stmt) {
    if (m.size >= MAX_STATEMENTS) m.clear();
    stmt = db.prepare(sql);
    m.set(sql, stmt);
  }
  return stmt;
}

function run(db: SQLite.Database, q: CompiledQuery): QueryResult<unknown> {
  const stmt = prepared(db, q.sql);
  if (stmt.reader) return { rows: stmt.all(q.parameters as unknown[]) };
  const { changes, lastInsertRowid } = stmt.run(q.parameters as unknown[]);
  return {
    ...(lastInsertRowid != null ? { insertId: BigInt(lastInsertRowid) } : {}),
    ...(changes != null ? { numAffectedRows: BigInt(changes) } : {}),
    rows: [],
  };
}

class CoffreSqliteDriver implements Driver {
  readonly writes = new Mutex();
  private readonly readOnly = new Map<string, boolean>();
  /** set when the file failed its integrity check: every change is refused with it */
  refusal: AppError | undefined;

  private readerDb: SQLite.Database | undefined;
  /** set while the writer's journal is a WAL: commits are flushed by it (group commit) */
  wal: WalSync | undefined;

  constructor(
    readonly writer: SQLite.Database,
    private readonly openReader: (() => SQLite.Database) | undefined,
    private readonly o: SqliteOptions,
  ) {
    this.followJournal();
  }

  /**
   * Chooses who makes a commit durable, from the writer's journal mode: in WAL mode, this driver's
   * group flush (`synchronous = NORMAL` keeps the file consistent; src/db/wal-sync.ts); in any
   * other mode, SQLite itself at each commit (`synchronous = FULL`).
   */
  followJournal(): void {
    if (this.writer.readonly) return;
    const wal = String(this.writer.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
    void this.wal?.close();
    this.wal = wal ? new WalSync(`${this.writer.name}-wal`) : undefined;
    this.writer.pragma(`synchronous = ${wal ? 'NORMAL' : 'FULL'}`);
  }

  /**
   * Resolves once every change committed so far is on the disk (at once inside `unwaited`:
   * src/db/durability.ts). A failed flush refuses every later change.
   */
  async durable(): Promise<void> {
    if (!this.wal || flushWaived()) return;
    try {
      await this.wal.durable();
    } catch (e) {
      if (isNoSpace(e)) {
        const err = storageFull('database', path.dirname(this.o.file), e);
        this.o.onFull?.(err);
        throw err;
      }
      const err = dbSyncFailed(this.o.file, e);
      this.refusal ??= err;
      this.o.onCorrupt?.(err);
      throw err;
    }
  }

  /** The query-only connection, opened on first use (a short-lived command that only writes never opens it). */
  get reader(): SQLite.Database | undefined {
    if (!this.readerDb && this.openReader) this.readerDb = this.openReader();
    return this.readerDb;
  }

  /** Closes the reader (switching the journal mode needs the writer alone); reopened when needed. */
  closeReader(): void {
    this.readerDb?.close();
    this.readerDb = undefined;
    this.readOnly.clear();
  }

  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new Session(this);
  }
  async beginTransaction(c: DatabaseConnection): Promise<void> {
    await (c as Session).begin();
  }
  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await (c as Session).commit();
  }
  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    await (c as Session).rollback();
  }
  async releaseConnection(c: DatabaseConnection): Promise<void> {
    await (c as Session).rollback();
  }
  async destroy(): Promise<void> {
    this.closeReader();
    await this.wal?.close();
    if (this.writer.open) this.writer.close();
  }

  /** Whether a statement is a query that only reads (asked once per SQL text of the reader connection). */
  readsOnly(sql: string): boolean {
    if (!this.openReader) return false;
    let ro = this.readOnly.get(sql);
    if (ro === undefined) {
      try {
        // PRAGMAs and the like set state of the connection they run on: the writer's
        ro = /^\s*(select|with)\b/i.test(sql) && this.reader!.prepare(sql).readonly;
      } catch {
        ro = false; // e.g. a table the reader does not know yet: the writer will say
      }
      if (this.readOnly.size >= 2000) this.readOnly.clear();
      this.readOnly.set(sql, ro);
    }
    return ro;
  }

  /** Runs a statement; while another process holds the lock, waits asynchronously until `deadline`. */
  async exec(db: SQLite.Database, q: CompiledQuery, since: number): Promise<QueryResult<unknown>> {
    let delay = SQLITE_BUSY_SPIN_MS;
    for (;;) {
      try {
        return run(db, q);
      } catch (e) {
        if (isNoSpace(e)) {
          const err = storageFull('database', path.dirname(this.o.file), e);
          this.o.onFull?.(err);
          throw err;
        }
        if (isCorrupt(e)) {
          const err = dbCorrupt(this.o.file, String((e as { code?: unknown }).code), e);
          this.o.onCorrupt?.(err);
          throw err;
        }
        if (!isBusy(e)) throw e;
        const waited = performance.now() - since;
        if (waited >= this.o.lockWaitMs || db.inTransaction) {
          this.o.onBusy?.({ waitedMs: waited });
          throw dbBusy(waited, e);
        }
        await sleep(Math.min(delay, this.o.lockWaitMs - waited));
        delay = Math.min(delay * 2, 100);
      }
    }
  }
}

/** One kysely connection: a transaction on the writer, or single statements routed by kind. */
class Session implements DatabaseConnection {
  private unlock: (() => void) | undefined;

  constructor(private readonly d: CoffreSqliteDriver) {}

  async begin(): Promise<void> {
    if (this.d.refusal) throw this.d.refusal;
    const since = performance.now();
    const unlock = await this.d.writes.lock();
    try {
      await this.d.exec(this.d.writer, CompiledQuery.raw('begin immediate'), since).catch((e: unknown) => {
        // a read-only database (query_only, read-only file) takes no write lock: a plain transaction
        // still reads, and its first write fails with what the caller reports
        if ((e as { code?: string }).code !== 'SQLITE_READONLY') throw e;
        run(this.d.writer, CompiledQuery.raw('begin'));
      });
      this.unlock = unlock;
    } catch (e) {
      unlock();
      throw e;
    }
  }

  async commit(): Promise<void> {
    // a failed commit leaves the transaction open: kysely then calls rollback, which releases
    await this.d.exec(this.d.writer, CompiledQuery.raw('commit'), performance.now());
    this.release();
    // the next transaction runs while this one's commit is flushed (and shares the flush)
    await this.d.durable();
  }

  async rollback(): Promise<void> {
    if (!this.unlock) return;
    try {
      if (this.d.writer.inTransaction) run(this.d.writer, CompiledQuery.raw('rollback'));
    } finally {
      this.release();
    }
  }

  private release(): void {
    const u = this.unlock;
    this.unlock = undefined;
    u?.();
  }

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    const since = performance.now();
    if (this.unlock) return (await this.d.exec(this.d.writer, q, since)) as QueryResult<R>;
    if (this.d.readsOnly(q.sql)) return (await this.d.exec(this.d.reader!, q, since)) as QueryResult<R>;
    if (this.d.refusal) throw this.d.refusal;
    const unlock = await this.d.writes.lock();
    let r: QueryResult<R>;
    try {
      const journal = /^\s*pragma\s+journal_mode\s*=/i.test(q.sql);
      if (journal) this.d.closeReader();
      r = (await this.d.exec(this.d.writer, q, since)) as QueryResult<R>;
      if (journal) this.d.followJournal();
    } finally {
      unlock();
    }
    // a change outside a transaction (its own implicit one) is answered once durable too
    if (r.numAffectedRows !== undefined) await this.d.durable();
    return r;
  }

  async *streamQuery<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    // an iterator keeps its connection busy across awaits: it runs on the writer, alone
    const unlock = this.unlock ? undefined : await this.d.writes.lock();
    try {
      for (const row of this.d.writer.prepare(q.sql).iterate(q.parameters as unknown[])) yield { rows: [row as R] };
    } finally {
      unlock?.();
    }
  }
}

/** SQLite does run DDL inside transactions; kysely's adapter just doesn't say so. We need it for
 * crash-safe migrations (a kill -9 mid-migration must leave the schema as it was). Connections
 * are managed by the driver above (its own writer mutex), not by kysely's single-connection lock. */
class CoffreSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
  override get supportsMultipleConnections(): boolean {
    return true;
  }
}

export class CoffreSqliteDialect implements Dialect {
  constructor(
    private readonly writer: SQLite.Database,
    private readonly openReader: (() => SQLite.Database) | undefined,
    private readonly o: SqliteOptions,
  ) {}
  private driver: CoffreSqliteDriver | undefined;
  private refusal: AppError | undefined;
  createDriver(): Driver {
    this.driver = new CoffreSqliteDriver(this.writer, this.openReader, this.o);
    this.driver.refusal = this.refusal;
    return this.driver;
  }
  /** The group commit's flushes so far (none outside WAL mode). */
  flushes(): { started: number; ended: number } {
    const w = this.driver?.wal;
    return { started: w?.started ?? 0, ended: w?.ended ?? 0 };
  }
  /** From now on every change is refused with `e` (reads go on); undefined lifts the refusal. */
  refuseWrites(e: AppError | undefined): void {
    this.refusal = e;
    if (this.driver) this.driver.refusal = e;
  }
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return new CoffreSqliteAdapter();
  }
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
