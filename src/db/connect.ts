import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, type DialectAdapter } from 'kysely';
import type { DatabaseConfig } from '../config/sections/database.js';
import { readSecretFile } from '../config/index.js';
import type { Database, Dialect } from './types.js';
import { AppError } from '../shared/errors.js';

/** SQLite does run DDL inside transactions; kysely's adapter just doesn't say so. We need it for
 * crash-safe migrations (a kill -9 mid-migration must leave the schema as it was). */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
class CoffreSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** SQLite only: the file path (backups use VACUUM INTO on it) */
  file?: string;
  close(): Promise<void>;
}

/**
 * The one factory that knows the dialects (STYLE.md #4). Modules receive a Kysely instance and
 * never know which engine is behind it.
 */
export function openDatabase(cfg: DatabaseConfig, opts: { readonly?: boolean; mustExist?: boolean } = {}): DatabaseHandle {
  if (cfg.type === 'sqlite') {
    if (opts.mustExist && !fs.existsSync(cfg.file)) {
      throw new AppError('DB_MISSING', `database file not found: ${cfg.file}`, { exitCode: 2, hint: 'check database.file or run coffre init' });
    }
    fs.mkdirSync(path.dirname(cfg.file), { recursive: true });
    let sqlite: SQLite.Database;
    try {
      sqlite = new SQLite(cfg.file, { readonly: opts.readonly ?? false, timeout: cfg.busyTimeoutMs });
      if (!opts.readonly) sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('foreign_keys = ON');
      // deleted rows are zeroed in place: crypto-shredded keys (data keys, backup session keys) leave no residue in free space
      sqlite.pragma('secure_delete = ON');
      // FULL: a committed transaction survives power loss, not just a process crash
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma(`busy_timeout = ${cfg.busyTimeoutMs}`);
    } catch (e) {
      throw new AppError('DB_UNAVAILABLE', `cannot open database ${cfg.file}: ${(e as Error).message}`, { cause: e, hint: 'check the file and its permissions' });
    }
    const db = new Kysely<Database>({ dialect: new CoffreSqliteDialect({ database: sqlite }) });
    return { db, dialect: 'sqlite', file: cfg.file, close: () => db.destroy() };
  }
  const password = cfg.passwordFile ? readSecretFile(cfg.passwordFile, 'database.passwordFile') : undefined;
  // pg loads only for a PostgreSQL database (its ~1.4 MB of heap are not spent on SQLite appliances)
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  const pool = new pg.Pool({
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    ...(password !== undefined ? { password } : {}),
    ssl: cfg.ssl ? { rejectUnauthorized: true } : false,
    max: cfg.maxConnections,
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}
