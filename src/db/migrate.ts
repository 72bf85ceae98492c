import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration';
import { AppError } from '../shared/errors.js';
import { BUNDLED } from '../runtime/index.js';
import { forMigrations } from './pg-schema.js';

/** Top-level migrations/ (next to src/ both in the checkout and in dist/). */
export const MIGRATIONS_DIR = fileURLToPath(new URL(BUNDLED ? '../migrations/' : '../../migrations/', import.meta.url));

/**
 * In the bundle, dist/migrations compiled into one entry (scripts/build-bundle.mjs) that shares
 * kysely with the rest: importing each file would load kysely's ~250 modules again.
 */
const BUNDLED_MIGRATIONS: string | null = BUNDLED ? new URL('./migrations.mjs', import.meta.url).href : null;

const NAME = /^\d{4}-\d{2}-\d{2}T\d{4}-[a-z0-9-]+\.(ts|js)$/;

/** Loads migrations named `YYYY-MM-DDTHHMM-what.{ts,js}`, each exporting `up(db: Kysely<any>)`. */
export class DirMigrationProvider implements MigrationProvider {
  constructor(private readonly dir?: string) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    if (this.dir === undefined && BUNDLED_MIGRATIONS)
      return ((await import(BUNDLED_MIGRATIONS)) as { migrations: Record<string, Migration> }).migrations;
    const dir = this.dir ?? MIGRATIONS_DIR;
    const out: Record<string, Migration> = {};
    for (const f of fs.readdirSync(dir).sort()) {
      if (!NAME.test(f) || f.endsWith('.d.ts')) continue;
      // the mtime in the URL keeps a rewritten file from being served from the module cache
      const p = path.join(dir, f);
      const url = pathToFileURL(p).href + (f.endsWith('.js') ? `?m=${fs.statSync(p).mtimeMs}` : '');
      const mod = (await import(url)) as Migration;
      out[f.replace(/\.(ts|js)$/, '')] = mod;
    }
    return out;
  }
}

export interface MigrateResult {
  applied: string[];
  pending: number;
}

/**
 * Applies every pending migration in ONE transaction (all dialects we use have transactional
 * DDL), so a crash or a failing migration leaves the database exactly as it was.
 */
export async function migrateToLatest(db: Kysely<any>, dir?: string): Promise<MigrateResult> {
  const migrator = new Migrator({
    db: forMigrations(db),
    provider: new DirMigrationProvider(dir),
    migrationTableName: 'coffre_migrations',
    migrationLockTableName: 'coffre_migrations_lock',
  });
  const rs: MigrationResultSet = await migrator.migrateToLatest();
  if (rs.error) {
    const failed = rs.results?.find((r) => r.status === 'Error');
    throw new AppError(
      'MIGRATION_FAILED',
      `migration ${failed?.migrationName ?? '(unknown)'} failed: ${(rs.error as Error).message ?? String(rs.error)}; the database was left unchanged`,
      { exitCode: 1, cause: rs.error, hint: 'report this error; the appliance will not start until migrations apply' },
    );
  }
  return { applied: (rs.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), pending: 0 };
}

/** Names of migrations not yet applied. */
export async function pendingMigrations(db: Kysely<any>, dir?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new DirMigrationProvider(dir),
    migrationTableName: 'coffre_migrations',
    migrationLockTableName: 'coffre_migrations_lock',
  });
  return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
}
