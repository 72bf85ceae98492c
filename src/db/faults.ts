import type { JobDefinition } from '../jobs/types.js';
import type { Alert, Alerter } from '../monitoring/types.js';
import type { Clock } from '../shared/clock.js';
import type { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { DatabaseHandle } from './connect.js';
import { quickCheck, type IntegrityReport } from './integrity.js';
import { dbCorrupt } from './sqlite.js';

/** How often the same database alert is raised again by one process while the fault lasts. */
const ALERT_EVERY_MS = 60_000;

/**
 * The operator is told when the database is in trouble: `db.busy` (another process holds the
 * lock), `storage.full` (no space for the database), `db.corrupt` (SQLite found the file damaged,
 * or the integrity check failed). A failed integrity check also refuses every change from then on
 * (reads go on), so a damaged file is not written further. `check()` runs at start (serve) and as
 * the daily `db.integrity-check` job.
 */
export function watchDatabase(o: { db: DatabaseHandle; alerts: Alerter; clock: Clock; log: Logger }): {
  check(): Promise<IntegrityReport | undefined>;
  job: JobDefinition;
} {
  const last = new Map<string, number>();
  const raise = (a: Alert) => {
    const now = o.clock.nowMs();
    if (now - (last.get(a.kind) ?? Number.NEGATIVE_INFINITY) < ALERT_EVERY_MS) return;
    last.set(a.kind, now);
    // when the database cannot store it (the fault itself), the alerter logs it and sends it to the channels
    void o.alerts.raise(a).catch(() => undefined);
  };
  const store = { store: 'database' };
  o.db.onBusy = (e) =>
    raise({
      kind: 'db.busy',
      severity: 'warning',
      message: `a change waited ${Math.round(e.waitedMs)} ms for the database lock held by another process and was refused (DB_BUSY)`,
      targets: store,
    });
  o.db.onFull = (e: AppError) =>
    raise({ kind: 'storage.full', severity: 'critical', message: e.message, targets: store });
  o.db.onCorrupt = (e: AppError) =>
    raise({ kind: 'db.corrupt', severity: 'critical', message: e.message, targets: store });
  // PostgreSQL: the server ended an idle connection; the next query reconnects, and fails loudly if it cannot
  o.db.onConnectionLost = (e) =>
    o.log.warn(
      { event: 'db.connection_lost', code: (e as { code?: string }).code },
      'the database server ended an idle connection; the next query opens a new one',
    );

  const check = async (): Promise<IntegrityReport | undefined> => {
    if (o.db.dialect !== 'sqlite' || !o.db.file) return undefined;
    const r = await quickCheck(o.db.file);
    if (r.ok) {
      o.log.info({ event: 'db.integrity_ok', ms: r.ms }, 'database integrity check passed');
      return r;
    }
    const err = dbCorrupt(o.db.file, `PRAGMA quick_check: ${r.problems[0] ?? 'failed'}`);
    o.db.refuseWrites?.(err);
    o.log.error(
      { event: 'db.integrity_failed', problems: r.problems, ms: r.ms },
      'database integrity check failed: changes are refused',
    );
    last.delete('db.corrupt');
    raise({
      kind: 'db.corrupt',
      severity: 'critical',
      message: `${err.message} — ${r.problems.length} problem(s), first: ${r.problems[0] ?? '?'}`,
      targets: store,
    });
    return r;
  };
  return {
    check,
    job: {
      name: 'db.integrity-check',
      schedule: '50 3 * * *',
      run: async () => {
        const r = await check();
        if (r && !r.ok) throw dbCorrupt(o.db.file!, `PRAGMA quick_check: ${r.problems[0] ?? 'failed'}`);
        return r ?? { ok: true, problems: [], ms: 0, skipped: 'not SQLite' };
      },
    },
  };
}
