import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { openDatabase, migrateToLatest, type DatabaseHandle } from '../../src/db/index.js';
import type { DatabaseConfig } from '../../src/config/sections/database.js';
import { createTestDatabase, postgresConfig, startPostgres } from './postgres.js';

/**
 * A migrated database: a SQLite file in a temp dir (real SQLite, WAL), or in the `postgres`
 * project (vitest.config.ts) a database of its own in the run's PostgreSQL cluster.
 */
export async function createTestDb(): Promise<
  DatabaseHandle & { dir: string; config: DatabaseConfig; destroy(): Promise<void> }
> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-db-'));
  if (process.env.COFFRE_TEST_DIALECT === 'postgres') {
    const shared = inject('postgres');
    const own = shared ? undefined : await startPostgres();
    const pg = await createTestDatabase(shared ?? own!);
    const config = postgresConfig(pg);
    const h = openDatabase(config);
    await migrateToLatest(h.db);
    return {
      ...h,
      dir,
      config,
      destroy: async () => {
        await h.close();
        await pg.drop();
        await own?.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const config: DatabaseConfig = { type: 'sqlite', file: path.join(dir, 'coffre.db'), busyTimeoutMs: 5000 };
  const h = openDatabase(config);
  await migrateToLatest(h.db);
  return {
    ...h,
    dir,
    config,
    destroy: async () => {
      await h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
