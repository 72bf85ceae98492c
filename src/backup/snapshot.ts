import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { BackupSchema } from '../db/index.js';
import { openDatabase, type DatabaseHandle } from '../db/index.js';
import { backupErrors } from './errors.js';

/**
 * A consistent copy of the database with `VACUUM INTO` (it is consistent under writers
 * and leaves deleted content behind, unlike the online backup API). The copy is
 * then scrubbed of what a backup must not carry: the backup catalogue's rows (each backup's
 * wrapped session key: crypto-shredding an expired backup must not leave its key inside a newer
 * one) and job leases. Deletions are zeroed in place (secure_delete).
 */
export async function snapshotDatabase(h: DatabaseHandle, file: string): Promise<void> {
  if (h.dialect !== 'sqlite' || !h.file) {
    throw backupErrors.unsupported(
      'backups of a PostgreSQL database are not built in yet',
      'back PostgreSQL up with its own tooling (pg_basebackup) and keep blob backups here',
    );
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.rmSync(file, { force: true });
  try {
    await sql`VACUUM INTO ${file}`.execute(h.db);
  } catch (e) {
    fs.rmSync(file, { force: true });
    const msg = (e as Error).message;
    if (
      /SQLITE_FULL|disk is full|database or disk is full/i.test(msg) ||
      (e as { code?: string }).code === 'SQLITE_FULL'
    )
      throw backupErrors.localFull(`the database snapshot did not fit in ${path.dirname(file)}`);
    throw e;
  }
  fs.chmodSync(file, 0o600);
  const snap = openSnapshot(file);
  try {
    await sql`PRAGMA secure_delete = ON`.execute(snap.db);
    await snap.db.deleteFrom('backups').execute();
    await snap.db.deleteFrom('backup_checks').execute();
    await snap.db.deleteFrom('job_leases').execute();
    await sql`PRAGMA journal_mode = DELETE`.execute(snap.db);
  } finally {
    await snap.close();
  }
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
