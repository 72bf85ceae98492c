import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { BackupSchema } from '../db/index.js';
import { migrateToLatest, openDatabase, postgresToSqlite, type DatabaseHandle } from '../db/index.js';
import { backupErrors } from './errors.js';

/** What a backup must not carry: each backup's wrapped session key (crypto-shredding an expired backup must not leave its key inside a newer one), and job leases. */
const LEFT_OUT = ['backups', 'backup_checks', 'job_leases'] as const;

/**
 * A consistent copy of the database, as one self-contained SQLite file (the archive's database
 * member, whichever the dialect):
 * - SQLite: `VACUUM INTO` (it is consistent under writers and leaves deleted content behind,
 *   unlike the online backup API, measured here), then scrubbed of the tables a backup must not
 *   carry; deletions are zeroed in place (secure_delete).
 * - PostgreSQL: every row as of one snapshot (a `REPEATABLE READ`, `READ ONLY` transaction, the
 *   guarantee `pg_dump` gives) copied into a freshly migrated SQLite file (src/db/copy.ts), those
 *   tables left out. The blob listing is read from the copy, so it is of the same instant.
 */
export async function snapshotDatabase(h: DatabaseHandle, file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.rmSync(file, { force: true });
  if (h.dialect === 'postgres') return snapshotPostgres(h, file);
  if (!h.file) throw new Error('a SQLite database handle without its file');
  try {
    await sql`VACUUM INTO ${file}`.execute(h.db);
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw fullOr(e, file);
  }
  fs.chmodSync(file, 0o600);
  const snap = openSnapshot(file);
  try {
    await sql`PRAGMA secure_delete = ON`.execute(snap.db);
    for (const t of LEFT_OUT) await snap.db.deleteFrom(t).execute();
    await sql`PRAGMA journal_mode = DELETE`.execute(snap.db);
  } finally {
    await snap.close();
  }
}

async function snapshotPostgres(h: DatabaseHandle, file: string): Promise<void> {
  fs.closeSync(fs.openSync(file, 'wx', 0o600));
  const snap = openSnapshot(file);
  try {
    await migrateToLatest(snap.db);
    await postgresToSqlite(h.db, snap.db, LEFT_OUT);
    await sql`PRAGMA journal_mode = DELETE`.execute(snap.db);
  } catch (e) {
    await snap.close().catch(() => undefined);
    fs.rmSync(file, { force: true });
    throw fullOr(e, file);
  }
  await snap.close();
}

function fullOr(e: unknown, file: string): unknown {
  const msg = (e as Error).message;
  if (/SQLITE_FULL|disk is full|database or disk is full/i.test(msg) || (e as { code?: string }).code === 'SQLITE_FULL')
    return backupErrors.localFull(`the database snapshot did not fit in ${path.dirname(file)}`);
  return e;
}

/** Opens a snapshot file (read-write, rollback journal: it stays one self-contained file). */
export function openSnapshot(file: string): DatabaseHandle {
  return openDatabase({ type: 'sqlite', file, busyTimeoutMs: 5000 }, { mustExist: true });
}

/** `PRAGMA integrity_check` on a restored or downloaded snapshot: the problems, empty when sound. */
export async function integrityProblems(db: Kysely<BackupSchema>): Promise<string[]> {
  const r = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(db);
  const lines = r.rows.map((x) => x.integrity_check);
  return lines.length === 1 && lines[0] === 'ok' ? [] : lines.slice(0, 20);
}

/** The newest applied migration: the schema version recorded in the manifest. */
export async function schemaVersion(db: Kysely<BackupSchema>): Promise<string> {
  const r = await sql<{ name: string }>`SELECT name FROM coffre_migrations ORDER BY name DESC LIMIT 1`.execute(db);
  return r.rows[0]?.name ?? 'none';
}
