import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, migrateToLatest, type DatabaseHandle } from '../../src/db/index.js';

/** A migrated SQLite database in a temp dir (real SQLite, WAL). */
export async function createTestDb(): Promise<DatabaseHandle & { dir: string; destroy(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-db-'));
  const h = openDatabase({ type: 'sqlite', file: path.join(dir, 'coffre.db'), busyTimeoutMs: 5000 });
  await migrateToLatest(h.db);
  return {
    ...h,
    dir,
    destroy: async () => {
      await h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
