import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { openDatabase, migrateToLatest, type DatabaseHandle } from '../../src/db/index.js';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { Scheduler, clockCron, nextFire, previousFire, type CronAdapter } from '../../src/jobs/index.js';
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
    await expect(b.run('backup', { trigger: 'cli', actor: 'local:root' })).rejects.toMatchObject({
      code: 'JOB_BUSY',
      exitCode: 1,
    });
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
    await h.db
      .insertInto('job_leases')
      .values({ name: 'verify', holder: 'dead', acquired_at: clock.nowMs(), expires_at: clock.nowMs() + 1000 })
      .execute();
    await h.db
      .insertInto('job_runs')
      .values({
        job: 'verify',
        trigger: 'schedule',
        actor: 'job:verify',
        scheduled_for: null,
        started_at: clock.nowMs(),
        ended_at: null,
        outcome: 'running',
        progress: null,
        error: null,
      })
      .execute();
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
    const again = new Scheduler({
      db: h.db,
      clock,
      log,
      timeZone: 'Europe/Paris',
      leaseTtlMs: 60_000,
      cron: new ManualCron(),
    });
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
    const s = new Scheduler({
      db: h.db,
      clock: new FakeClock(),
      log,
      timeZone: 'UTC',
      leaseTtlMs: 60_000,
      cron: new ManualCron(),
    });
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

  it('a six-field expression counts seconds (the two-node test fires a slot every 2 seconds)', () => {
    const at = Date.UTC(2026, 6, 1, 12, 0, 3, 500);
    expect(nextFire('*/2 * * * * *', 'Europe/Paris', at)).toBe(Date.UTC(2026, 6, 1, 12, 0, 4));
    expect(previousFire('*/2 * * * * *', 'Europe/Paris', at)).toBe(Date.UTC(2026, 6, 1, 12, 0, 2));
    expect(nextFire('*/2 * * * * *', 'Europe/Paris', Date.UTC(2026, 6, 1, 12, 0, 4))).toBe(
      Date.UTC(2026, 6, 1, 12, 0, 6),
    );
    expect(previousFire('*/2 * * * * *', 'Europe/Paris', Date.UTC(2026, 6, 1, 12, 0, 4))).toBe(
      Date.UTC(2026, 6, 1, 12, 0, 4),
    );
  });

  it('one run at a time inside one process too: a second run of the same scheduler gets 409 JOB_BUSY naming the running run', async () => {
    const { h } = await db();
    const s = new Scheduler({
      db: h.db,
      clock: new FakeClock(),
      log,
      timeZone: 'UTC',
      leaseTtlMs: 60_000,
      cron: new ManualCron(),
    });
    const gate = deferred();
    let runs = 0;
    s.register({ name: 'backup', run: async () => (runs++, await gate.p) });
    let firstId = 0;
    const first = s.run('backup', { trigger: 'api', actor: 'user:a', onStarted: (id) => (firstId = id) });
    await new Promise((r) => setTimeout(r, 50));
    const second = (await s.run('backup', { trigger: 'api', actor: 'user:b' }).catch((e: unknown) => e)) as {
      code: string;
      httpStatus: number;
      message: string;
      details: { runId: number };
    };
    expect(second).toMatchObject({ code: 'JOB_BUSY', httpStatus: 409, details: { runId: firstId } });
    expect(second.message).toContain(`run #${firstId}`);
    expect(second.message).toContain(`process ${process.pid} on host ${os.hostname()}`);
    gate.resolve();
    await first;
    expect(runs).toBe(1);
    await s.run('backup', { trigger: 'api', actor: 'user:b' }); // released: runs again
    expect(runs).toBe(2);
  });

  it('the lease of a killed process of this host is taken over at once, its run marked abandoned, and the notice says so', async () => {
    const { h } = await db();
    const clock = new FakeClock();
    // a real process that held the lease, then was killed (SIGKILL: no clean-up)
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const holder = `${os.hostname()}:${child.pid}:0badc0de`;
    await h.db
      .insertInto('job_leases')
      .values({ name: 'keys.rotate', holder, acquired_at: clock.nowMs(), expires_at: clock.nowMs() + 120_000 })
      .execute();
    const dead = await h.db
      .insertInto('job_runs')
      .values({
        job: 'keys.rotate',
        trigger: 'cli',
        actor: 'local:root',
        scheduled_for: null,
        started_at: clock.nowMs(),
        ended_at: null,
        outcome: 'running',
        progress: null,
        error: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const s = new Scheduler({ db: h.db, clock, log, timeZone: 'UTC', leaseTtlMs: 120_000, cron: new ManualCron() });
    s.register({ name: 'keys.rotate', run: async () => 'rotated' });
    // while it lives, the job is busy, and the message says who holds it
    await expect(s.run('keys.rotate', { trigger: 'cli', actor: 'local:root' })).rejects.toMatchObject({
      code: 'JOB_BUSY',
      message: expect.stringContaining(`process ${child.pid}`),
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const notices: string[] = [];
    clock.advance(1000); // far less than the lease's 2 minutes
    const r = await s.run('keys.rotate', { trigger: 'cli', actor: 'local:root', onNotice: (m) => notices.push(m) });
    expect(r.result).toBe('rotated');
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain(
      `took over the lease of process ${child.pid} on host ${os.hostname()}, which is no longer running`,
    );
    expect(notices[0]).toContain(`#${dead.id}`);
    const rows = await s.runs('keys.rotate');
    expect(rows.map((x) => [x.id, x.outcome])).toEqual([
      [r.runId, 'succeeded'],
      [Number(dead.id), 'abandoned'],
    ]);
    expect(await h.db.selectFrom('job_leases').selectAll().execute()).toEqual([]);
  });

  it('a lease of a live process is never taken over, even of this host', async () => {
    const { h } = await db();
    const clock = new FakeClock();
    const other = new Scheduler({ db: h.db, clock, log, timeZone: 'UTC', leaseTtlMs: 60_000, cron: new ManualCron() }); // same pid, another holder
    const s = new Scheduler({ db: h.db, clock, log, timeZone: 'UTC', leaseTtlMs: 60_000, cron: new ManualCron() });
    const gate = deferred();
    other.register({ name: 'verify', run: () => gate.p });
    s.register({ name: 'verify', run: async () => undefined });
    const first = other.run('verify', { trigger: 'schedule', actor: 'job:verify' });
    await new Promise((r) => setTimeout(r, 50));
    await expect(s.run('verify', { trigger: 'cli', actor: 'local:root' })).rejects.toMatchObject({ code: 'JOB_BUSY' });
    gate.resolve();
    await first;
  });

  it('a stop during a run leaves nothing behind that writes to the closed database (no lease-renewal crash)', async () => {
    const file = path.join(tempDir(), 'stop.db');
    const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 2000 });
    await migrateToLatest(h.db);
    const s = new Scheduler({
      db: h.db,
      clock: new FakeClock(),
      log,
      timeZone: 'UTC',
      leaseTtlMs: 1000,
      cron: new ManualCron(),
    });
    s.register({ name: 'stuck', run: () => new Promise(() => undefined) }); // ignores the abort
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      void s.run('stuck', { trigger: 'cli', actor: 'local:root' }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
      await s.stop(50);
      await h.close();
      await new Promise((r) => setTimeout(r, 2500)); // two renewal periods
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled.map(String)).toEqual([]);
  });

  describe('daylight saving (Europe/Paris)', () => {
    const PARIS = 'Europe/Paris';
    const utc = (d: string) => Date.parse(`${d}Z`);
    it('a time in the spring-forward gap fires at the next valid minute; a repeated hour fires once', () => {
      // 2027-03-28: 02:00 CET → 03:00 CEST (01:00 UTC); 2027-10-31: 03:00 CEST → 02:00 CET (01:00 UTC)
      expect(nextFire('30 2 * * *', PARIS, utc('2027-03-27T12:00'))).toBe(utc('2027-03-28T01:00')); // 03:00 CEST
      expect(nextFire('30 2 * * *', PARIS, utc('2027-03-28T01:00'))).toBe(utc('2027-03-29T00:30')); // 02:30 CEST
      expect(previousFire('30 2 * * *', PARIS, utc('2027-03-28T01:30'))).toBe(utc('2027-03-28T01:00'));
      expect(nextFire('30 2 * * *', PARIS, utc('2027-10-30T12:00'))).toBe(utc('2027-10-31T00:30')); // first 02:30 (CEST)
      expect(nextFire('30 2 * * *', PARIS, utc('2027-10-31T00:30'))).toBe(utc('2027-11-01T01:30')); // not the second 02:30 (CET)
      expect(previousFire('30 2 * * *', PARIS, utc('2027-10-31T01:45'))).toBe(utc('2027-10-31T00:30'));
      // every quarter hour in the gap is one run at 03:00, then 03:15
      expect(nextFire('*/15 * * * *', PARIS, utc('2027-03-28T00:50'))).toBe(utc('2027-03-28T01:00'));
      expect(nextFire('*/15 * * * *', PARIS, utc('2027-03-28T01:00'))).toBe(utc('2027-03-28T01:15'));
    });

    it('the scheduler, on the injected clock, runs the daily 02:30 once per local date across both changes', async () => {
      const { h } = await db();
      const ran: { at: string; slot: string }[] = [];
      /** a scheduler started at `from`, the clock then set to each step in turn */
      const season = async (from: string, days: [string, string[]][]) => {
        const clock = new FakeClock(utc(from));
        const s = new Scheduler({
          db: h.db,
          clock,
          log,
          timeZone: PARIS,
          leaseTtlMs: 60_000,
          cron: clockCron(clock, { maxSleepMs: 5 }),
        });
        s.register({
          name: 'backup',
          schedule: '30 2 * * *',
          run: async (ctx) =>
            void ran.push({ at: clock.now().toISOString(), slot: new Date(ctx.scheduledFor!).toISOString() }),
        });
        await s.start();
        for (const [, steps] of days) {
          for (const d of steps) {
            clock.set(utc(d));
            await new Promise((r) => setTimeout(r, 60));
          }
        }
        await s.stop();
        return days.map(([d]) => d);
      };
      const dates = [
        ...(await season('2027-03-26T12:00', [
          ['2027-03-27', ['2027-03-27T01:29', '2027-03-27T01:30', '2027-03-27T05:00']], // CET
          ['2027-03-28', ['2027-03-28T00:59', '2027-03-28T01:00', '2027-03-28T01:30', '2027-03-28T05:00']], // 02:30 does not exist
          ['2027-03-29', ['2027-03-29T00:29', '2027-03-29T00:30', '2027-03-29T05:00']], // CEST
        ])),
        ...(await season('2027-10-29T12:00', [
          ['2027-10-30', ['2027-10-30T00:29', '2027-10-30T00:30', '2027-10-30T05:00']], // CEST
          [
            '2027-10-31',
            ['2027-10-31T00:29', '2027-10-31T00:30', '2027-10-31T01:29', '2027-10-31T01:30', '2027-10-31T05:00'],
          ], // 02:30 twice
          ['2027-11-01', ['2027-11-01T01:29', '2027-11-01T01:30', '2027-11-01T05:00']], // CET
        ])),
      ];
      expect(ran.map((r) => r.slot)).toEqual([
        '2027-03-27T01:30:00.000Z',
        '2027-03-28T01:00:00.000Z',
        '2027-03-29T00:30:00.000Z',
        '2027-10-30T00:30:00.000Z',
        '2027-10-31T00:30:00.000Z',
        '2027-11-01T01:30:00.000Z',
      ]);
      expect(ran.map((r) => r.at)).toEqual(ran.map((r) => r.slot)); // each at its slot, not later
      // one run per local date
      const localDate = (iso: string) => new Intl.DateTimeFormat('en-CA', { timeZone: PARIS }).format(new Date(iso));
      expect(ran.map((r) => localDate(r.slot))).toEqual(dates);
    });
  });
});
