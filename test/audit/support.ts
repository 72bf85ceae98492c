import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { openDatabase, migrateToLatest, type DatabaseHandle } from '../../src/db/index.js';
import { createLogger } from '../../src/shared/logger.js';
import { FakeClock } from '../../src/shared/clock.js';
import { DbAuditor } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/types.js';

export const silentLog = () => createLogger({ level: 'silent', destination: 'stderr' });

export interface TestTrail {
  dir: string;
  file: string;
  h: DatabaseHandle;
  clock: FakeClock;
  auditor: DbAuditor;
  close(): Promise<void>;
}

/** A real SQLite database (WAL, synchronous FULL) in a temp dir, migrated, with a DbAuditor. */
export async function openTrail(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-audit-'))): Promise<TestTrail> {
  const file = path.join(dir, 'coffre.db');
  const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 5000 });
  await migrateToLatest(h.db);
  const clock = new FakeClock();
  const auditor = new DbAuditor({ db: h.db, clock, log: silentLog() });
  return {
    dir,
    file,
    h,
    clock,
    auditor,
    close: async () => {
      await auditor.close();
      await h.close();
    },
  };
}

export const ev = (i: number, over: Partial<AuditEvent> = {}): AuditEvent => ({
  action: 'doc.read',
  actor: `user:u${i % 7}`,
  outcome: 'success',
  targets: { workspace: `w${i % 3}`, document: `d${i}` },
  source: { ip: '192.0.2.10', userAgent: 'Mozilla/5.0 test', requestId: `req-${i}` },
  ...over,
});

/** Runs `fn` on a raw connection to the file (the appliance's handle must be closed first). */
export function tamper(file: string, fn: (db: SQLite.Database) => void): void {
  const db = new SQLite(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

export function rmrf(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
