import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Kysely, PostgresDialect } from 'kysely';
import type { DatabaseConfig } from '../config/sections/database.js';
import { readSecretFile } from '../config/index.js';
import type { Database, Dialect } from './types.js';
import { AppError } from '../shared/errors.js';
import { CoffreSqliteDialect, SQLITE_BUSY_SPIN_MS, type BusyEvent } from './sqlite.js';
import { localBus, postgresBus, type ChangeBus } from './notify.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** messages to every node on this database (src/db/notify.ts) */
  bus: ChangeBus;
  /** SQLite only: the file path (backups use VACUUM INTO on it) */
  file?: string;
  /** SQLite only: called when a statement gave up waiting for another process's lock (DB_BUSY) */
  onBusy?: (e: BusyEvent) => void;
  /** SQLite only: called when a write found no space left (STORAGE_FULL) */
  onFull?: (e: AppError) => void;
  /** SQLite only: called when SQLite found the file damaged (DB_CORRUPT) */
  onCorrupt?: (e: AppError) => void;
  /** SQLite only: the group commit's WAL flushes begun and ended so far (src/db/wal-sync.ts) */
  flushes?(): { started: number; ended: number };
  /** SQLite only: refuse every change with `e` from now on (a failed integrity check); undefined lifts it */
  refuseWrites?(e: AppError | undefined): void;
  /**
   * PostgreSQL only: called when the server ended an idle pooled connection (a restart, a
   * failover, an administrator's pg_terminate_backend). The pool drops that connection and the
   * next query opens a new one; without a listener the pool's error would end the process.
   */
  onConnectionLost?: (e: Error) => void;
  close(): Promise<void>;
}

/**
 * The one factory that knows the dialects. Modules receive a Kysely instance and
 * never know which engine is behind it.
 */
/** PostgreSQL's bigint (the migrations' integers there: src/db/pg-schema.ts) read as a number, as SQLite gives it; never silently rounded. */
const INT8_OID = 20;
function int8(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw new AppError('DB_VALUE_RANGE', `a 64-bit integer from the database is beyond 2^53 (${v.length} digits)`, {
      httpStatus: 500,
    });
  return n;
}

export function openDatabase(
  cfg: DatabaseConfig,
  opts: { readonly?: boolean; mustExist?: boolean } = {},
): DatabaseHandle {
  if (cfg.type === 'sqlite') {
    if (opts.mustExist && !fs.existsSync(cfg.file)) {
      throw new AppError('DB_MISSING', `database file not found: ${cfg.file}`, {
        exitCode: 2,
        hint: 'check database.file or run coffre init',
      });
    }
    fs.mkdirSync(path.dirname(cfg.file), { recursive: true });
    const open = (readonly: boolean, reader = false) => {
      const sqlite = new SQLite(cfg.file, { readonly, timeout: SQLITE_BUSY_SPIN_MS });
      if (!readonly && !reader) sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('foreign_keys = ON');
      // deleted rows are zeroed in place: crypto-shredded keys (data keys, backup session keys) leave no residue in free space
      sqlite.pragma('secure_delete = ON');
      // FULL: a committed transaction survives power loss, not just a process crash. On a WAL
      // journal the driver lowers it to NORMAL and flushes each commit itself, off the event loop,
      // before answering (group commit: src/db/wal-sync.ts)
      sqlite.pragma('synchronous = FULL');
      // SQLite's own busy handler sleeps on the event loop: a few ms only, the rest is waited for asynchronously (src/db/sqlite.ts)
      sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_SPIN_MS}`);
      return sqlite;
    };
    let writer: SQLite.Database;
    try {
      writer = open(opts.readonly ?? false);
    } catch (e) {
      throw new AppError('DB_UNAVAILABLE', `cannot open database ${cfg.file}: ${(e as Error).message}`, {
        cause: e,
        hint: 'check the file and its permissions',
      });
    }
    // reads outside transactions use their own connection, opened on first use (src/db/sqlite.ts)
    const openReader = opts.readonly
      ? undefined
      : () => {
          const r = open(false, true);
          r.pragma('query_only = ON');
          return r;
        };
    const handle: DatabaseHandle = {
      db: undefined as unknown as Kysely<Database>,
      dialect: 'sqlite',
      file: cfg.file,
      bus: localBus(),
      close: async () => {
        await handle.bus.close();
        await handle.db.destroy();
        // kysely only closes a driver it used
        if (writer.open) writer.close();
      },
    };
    const dialect = new CoffreSqliteDialect(writer, openReader, {
      file: cfg.file,
      lockWaitMs: cfg.busyTimeoutMs,
      onBusy: (e) => handle.onBusy?.(e),
      onFull: (e) => handle.onFull?.(e),
      onCorrupt: (e) => handle.onCorrupt?.(e),
    });
    handle.refuseWrites = (e) => dialect.refuseWrites(e);
    handle.flushes = () => dialect.flushes();
    handle.db = new Kysely<Database>({ dialect });
    return handle;
  }
  const password = cfg.passwordFile ? readSecretFile(cfg.passwordFile, 'database.passwordFile') : undefined;
  // pg loads only for a PostgreSQL database (its ~1.4 MB of heap are not spent on SQLite appliances)
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  const client = {
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    ...(password !== undefined ? { password } : {}),
    ssl: cfg.ssl ? { rejectUnauthorized: true } : false,
  };
  const pool = new pg.Pool({
    ...client,
    max: cfg.maxConnections,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? int8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const bus = postgresBus(pg, client, (text, values) => pool.query(text, values));
  const handle: DatabaseHandle = {
    db,
    dialect: 'postgres',
    bus,
    close: async () => {
      await bus.close();
      await db.destroy();
    },
  };
  pool.on('error', (e) => handle.onConnectionLost?.(e));
  return handle;
}
