import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What `PRAGMA quick_check` found: `ok`, or SQLite's problem lines (scrubbed, at most 10). */
export interface IntegrityReport {
  ok: boolean;
  problems: string[];
  ms: number;
}

const SQLITE_MODULE = createRequire(import.meta.url).resolve('better-sqlite3');

// its own read-only connection in a worker thread: the check reads every page (seconds on a big
// file) without blocking the server, and sees the file as it is on disk, not a connection's cache
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.file, { readonly: true, fileMustExist: true, timeout: 5000 });
  parentPort.postMessage({ rows: db.pragma('quick_check').map((r) => String(r.quick_check)) });
} catch (e) {
  parentPort.postMessage({ error: String((e && e.code) || 'ERROR') });
} finally {
  try { db && db.close(); } catch {}
}`;

/** Problem text as SQLite words it, limited to printable ASCII (no stored bytes are echoed). */
const scrub = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);

/** `PRAGMA quick_check` of a SQLite file (structure, indexes, constraints; not row-to-index contents). */
export function quickCheck(file: string): Promise<IntegrityReport> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { module: SQLITE_MODULE, file } });
    w.once('message', (m: { rows?: string[]; error?: string }) => {
      const ms = Math.round(performance.now() - t0);
      if (m.error) resolve({ ok: false, problems: [m.error], ms });
      else
        resolve({
          ok: m.rows!.length === 1 && m.rows![0] === 'ok',
          problems: m
            .rows!.filter((r) => r !== 'ok')
            .slice(0, 10)
            .map(scrub),
          ms,
        });
    });
    w.once('error', reject);
  });
}
