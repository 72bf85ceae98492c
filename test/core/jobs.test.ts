import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { openDatabase, migrateToLatest, type DatabaseHandle } from '../../src/db/index.js';
import { Scheduler, previousFire, type CronAdapter } from '../../src/jobs/index.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { tempDir } from '../support/tmp.js';

const log = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const handles: DatabaseHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});
async function db(file = path.join(tempDir(), 'jobs.db')) {
  const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 2000 });
  handles.push(h);
  await migrateToLatest(h.db);
  return { h, file };
}
/** A cron adapter the test fires by hand. */
class ManualCron implements CronAdapter {
  fns: (() => void)[] = [];
  schedule(_e: string, _tz: string, fn: () => void) {
    this.fns.push(fn);
    return { stop: () => (this.fns = this.fns.filter((f) => f !== fn)) };
  }
}
const deferred = () => {
  let resolve!: () => void;
  const p = new Promise<void>((r) => (resolve = r));
  return { p, resolve };
};

describe('jobs', () => {
  it('single flight: a second runner (another process, same database) gets JOB_BUSY while the first runs', async () => {
    const { h, file } = await db();
    const other = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 2000 });
    handles.push(other);
    const clock = new FakeClock();
    const gate = deferred();
    const a = new Scheduler({ db: h.db, clock, log, timeZone: 'UTC', leaseTtlMs: 60_000, holder: 'A' });
    const b = new Scheduler({ db: other.db, clock, log, timeZone: 'UTC', leaseTtlMs: 60_000, holder: 'B' });
    let runs = 0;
    const job = { name: 'backup', run: async () => (runs++, await gate.p, 'done') };
    a.register(job);
    b.register(job);
    const first = a.run('backup', { trigger: 'schedule', actor: 'job:backup' });
    await new Promise((r) => setTimeout(r, 50));
    await expect(b.run('backup', { trigger: 'cli', actor: 'local:root' })).rejects.toMatchObject({ code: 'JOB_BUSY', exitCode: 1 });
    gate.resolve();
    expect((await first).result).toBe('done');
    // released: B can run now
    await b.run('backup', { trigger: 'cli', actor: 'local:root' });
    expect(runs).toBe(2);
    const rows = await a.runs('backup');
    expect(rows.map((r) => [r.trigger, r.outcome])).toEqual([
      ['cli', 'succeeded'],
      ['schedule', 'succeeded'],
    ]);
  });

  it('a crashed holder’s lease expires, its run is marked abandoned at start, and the job can run again', async () => {
    const { h } = await db();
    const clock = new FakeClock();
    await h.db.insertInto('job_leases').values({ name: 'verify', holder: 'dead', acquired_at: clock.nowMs(), expires_at: clock.nowMs() + 1000 }).execute();
    await h.db.insertInto('job_runs').values({ job: 'verify', trigger: 'schedule', actor: 'job:verify', scheduled_for: null, started_at: clock.nowMs(), ended_at: null, outcome: 'running', progress: null, error: null }).execute();
    const s = new Scheduler({ db: h.db, clock, log, timeZone: 'UTC', leaseTtlMs: 60_000, cron: new ManualCron() });
    s.register({ name: 'verify', run: async () => 1 });
    await expect(s.run('verify', { trigger: 'cli', actor: 'local:root' })).rejects.toMatchObject({ code: 'JOB_BUSY' });
    clock.advance(2000);
    await s.start();
    const [abandoned] = await s.runs('verify');
    expect(abandoned?.outcome).toBe('abandoned');
    await s.run('verify', { trigger: 'cli', actor: 'local:root' });
    expect((await s.runs('verify'))[0]?.outcome).toBe('succeeded');
    await s.stop();
  });

  it('catches up a run missed while down, once; cron triggers run the same code; failures are recorded', async () => {
    const { h } = await db();
    // Monday 2026-11-02 09:00 UTC; the job runs daily at 02:00 Europe/Paris
    const clock = new FakeClock(Date.UTC(2026, 10, 2, 9, 0));
    const cron = new ManualCron();
    const s = new Scheduler({ db: h.db, clock, log, timeZone: 'Europe/Paris', leaseTtlMs: 60_000, cron });
    const slots: (number | null)[] = [];
    let fail = false;
    s.register({
      name: 'daily',
      schedule: '0 2 * * *',
      catchUp: true,
      run: async (ctx) => {
        slots.push(ctx.scheduledFor);
        ctx.progress({ phase: 'work', done: 1, total: 2, percent: 50 });
        if (fail) throw new Error('target unreachable');
      },
    });
    s.register({ name: 'manual-only', run: async () => undefined });
    await s.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(slots).toEqual([Date.UTC(2026, 10, 2, 1, 0)]); // 02:00 Paris = 01:00 UTC in November
    const [run] = await s.runs('daily');
    expect(run).toMatchObject({ trigger: 'catch-up', outcome: 'succeeded', progress: { phase: 'work', percent: 50 } });
    // a second start the same day does not run it again
    const again = new Scheduler({ db: h.db, clock, log, timeZone: 'Europe/Paris', leaseTtlMs: 60_000, cron: new ManualCron() });
    again.register({ name: 'daily', schedule: '0 2 * * *', catchUp: true, run: async () => void slots.push(-1) });
    expect(await again.catchUp()).toEqual([]);
    // cron fires next day; failing run is recorded with its error
    clock.set(Date.UTC(2026, 10, 3, 1, 0, 1));
    fail = true;
    cron.fns[0]!();
    await new Promise((r) => setTimeout(r, 100));
    const [failed] = await s.runs('daily');
    expect(failed).toMatchObject({ trigger: 'schedule', outcome: 'failed', error: 'target unreachable' });
    expect(slots.at(-1)).toBe(Date.UTC(2026, 10, 3, 1, 0));
    await s.stop();
  });

  it('stop() asks a running job to reach a safe point', async () => {
    const { h } = await db();
    const s = new Scheduler({ db: h.db, clock: new FakeClock(), log, timeZone: 'UTC', leaseTtlMs: 60_000, cron: new ManualCron() });
    let sawAbort = false;
    s.register({
      name: 'long',
      run: (ctx) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            resolve();
          });
        }),
    });
    const p = s.run('long', { trigger: 'cli', actor: 'local:root' });
    await new Promise((r) => setTimeout(r, 50));
    await s.stop(5000);
    await p;
    expect(sawAbort).toBe(true);
  });

  it('computes previous fire times in the appliance time zone', () => {
    expect(previousFire('30 3 * * *', 'Europe/Paris', Date.UTC(2026, 6, 1, 12))).toBe(Date.UTC(2026, 6, 1, 1, 30));
  });
});
