import type { Selectable } from 'kysely';
import type { JobsDb } from '../db/index.js';
import type { CoreTables } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AppError } from '../shared/errors.js';
import { clockCron, previousFire, validateCron, type CronAdapter } from './cron.js';
import { describeHolder, Leases, makeHolderId, type LeaseHolder } from './leases.js';
import type { JobDefinition, JobProgress, JobRunDetail, JobRunRecord, JobTrigger } from './types.js';

export interface SchedulerOptions {
  db: JobsDb;
  clock: Clock;
  log: Logger;
  timeZone: string;
  leaseTtlMs: number;
  /** per-job cron overrides (config jobs.schedules) */
  schedules?: Readonly<Record<string, string>>;
  cron?: CronAdapter;
  holder?: string;
}

export interface RunOptions {
  trigger: JobTrigger;
  actor: string;
  scheduledFor?: number | null;
  onProgress?: (p: JobProgress) => void;
  /** called once the run is recorded (an API answers with its id while the job goes on) */
  onStarted?: (runId: number) => void;
  /** told what the run found and repaired before starting (e.g. the lease of a process that is gone, taken over) */
  onNotice?: (message: string) => void;
  /** asks the job to stop at its next safe point (as `stop()` does), e.g. on SIGTERM in the CLI */
  signal?: AbortSignal;
  /** what this run is about, for jobs that take an argument (e.g. which backup to verify) */
  params?: Readonly<Record<string, string>>;
}

/**
 * The job registry and scheduler. `run()` is the one path for every trigger (cron, catch-up,
 * CLI, API): it takes the job's lease, records a job run, renews the lease while running and
 * records the outcome.
 */
export class Scheduler {
  private readonly jobs = new Map<string, JobDefinition>();
  private readonly tasks: { stop(): void }[] = [];
  private readonly running = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  private readonly leases: Leases;
  private readonly cron: CronAdapter;
  private started = false;
  private stopped = false;
  private watch: NodeJS.Timeout | undefined;

  constructor(private readonly o: SchedulerOptions) {
    this.leases = new Leases(o.db, o.clock, o.holder ?? makeHolderId(), o.leaseTtlMs);
    this.cron = o.cron ?? clockCron(o.clock);
  }

  register(job: JobDefinition): void {
    if (this.jobs.has(job.name)) throw new Error(`job ${job.name} registered twice`);
    const expr = this.scheduleOf(job);
    if (expr) {
      try {
        validateCron(expr);
      } catch (e) {
        throw new AppError(
          'CONFIG_INVALID',
          `jobs.schedules.${job.name}: invalid cron expression "${expr}": ${(e as Error).message}`,
          { exitCode: 2 },
        );
      }
    }
    this.jobs.set(job.name, job as JobDefinition);
  }

  list(): { name: string; schedule: string | undefined }[] {
    return [...this.jobs.values()].map((j) => ({ name: j.name, schedule: this.scheduleOf(j) }));
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  private scheduleOf(job: JobDefinition): string | undefined {
    return this.o.schedules?.[job.name] ?? job.schedule;
  }

  /** Runs a job now. Throws JOB_BUSY when another run (here or elsewhere) holds the lease. */
  async run<R = unknown>(name: string, ro: RunOptions): Promise<{ runId: number; result: R; skipped?: true }> {
    const job = this.jobs.get(name);
    if (!job) throw new AppError('JOB_UNKNOWN', `no job named ${name}`, { httpStatus: 404, exitCode: 2 });
    const { db, clock } = this.o;
    const got = await this.leases.take(name);
    if (!got.ok) throw await this.busy(name, got.holder);
    const startedAt = clock.nowMs();
    let runId: number;
    try {
      // several nodes fire the same slot: the first to take the lease runs it, the others find its run
      if (ro.scheduledFor != null && (ro.trigger === 'schedule' || ro.trigger === 'catch-up')) {
        const done = await db
          .selectFrom('job_runs')
          .select('id')
          .where('job', '=', name)
          .where('scheduled_for', '=', ro.scheduledFor)
          .where('outcome', 'in', ['succeeded', 'running'])
          .executeTakeFirst();
        if (done) {
          await this.leases.release(name);
          return { runId: Number(done.id), result: undefined as R, skipped: true };
        }
      }
      // we hold the lease: a run of this job still marked running belongs to a process that stopped
      const stale = await db
        .selectFrom('job_runs')
        .select('id')
        .where('job', '=', name)
        .where('outcome', '=', 'running')
        .execute();
      if (stale.length) {
        await db
          .updateTable('job_runs')
          .set({ outcome: 'abandoned', ended_at: startedAt, error: 'process stopped during the run' })
          .where('job', '=', name)
          .where('outcome', '=', 'running')
          .execute();
      }
      if (got.tookOver || stale.length) {
        const msg = [
          got.tookOver
            ? `job ${name}: took over the lease of ${describeHolder(got.tookOver)}, which is no longer running`
            : `job ${name}:`,
          stale.length
            ? `run${stale.length > 1 ? 's' : ''} ${stale.map((r) => `#${r.id}`).join(', ')} of a stopped process marked abandoned`
            : '',
        ]
          .filter(Boolean)
          .join('; ');
        this.o.log.warn({ job: name, tookOver: got.tookOver?.holder, abandoned: stale.map((r) => Number(r.id)) }, msg);
        ro.onNotice?.(msg);
      }
      const row = await db
        .insertInto('job_runs')
        .values({
          job: name,
          trigger: ro.trigger,
          actor: ro.actor,
          scheduled_for: ro.scheduledFor ?? null,
          started_at: startedAt,
          ended_at: null,
          outcome: 'running',
          progress: null,
          error: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      runId = Number(row.id);
    } catch (e) {
      await this.leases.release(name);
      throw e;
    }
    ro.onStarted?.(runId);
    const abort = new AbortController();
    if (ro.signal?.aborted) abort.abort();
    else ro.signal?.addEventListener('abort', () => abort.abort(), { once: true });
    const log = this.o.log.child({ job: name, runId });
    let lastWrite = 0;
    let pending: JobProgress | null = null;
    const flush = async () => {
      if (!pending) return;
      const p = pending;
      pending = null;
      await db
        .updateTable('job_runs')
        .set({ progress: JSON.stringify(p) })
        .where('id', '=', runId)
        .execute()
        .catch(() => undefined);
    };
    const renew = setInterval(
      () => {
        if (this.stopped) return clearInterval(renew); // the database may be closed: no more writes
        void this.leases.renew(name).then(
          (ok) => {
            if (!ok) log.error('job lease lost; another holder took over');
          },
          (e: unknown) => log.warn({ err: e }, 'job lease not renewed'),
        );
        void flush();
      },
      Math.max(1000, Math.floor(this.o.leaseTtlMs / 3)),
    );
    renew.unref();
    const exec = (async () => {
      log.info({ trigger: ro.trigger }, 'job started');
      try {
        const result = (await job.run({
          runId,
          trigger: ro.trigger,
          actor: ro.actor,
          scheduledFor: ro.scheduledFor ?? null,
          params: ro.params ?? {},
          signal: abort.signal,
          log,
          progress: (p) => {
            pending = p;
            ro.onProgress?.(p);
            const now = Date.now();
            if (now - lastWrite > 1000) {
              lastWrite = now;
              void flush();
            }
          },
        })) as R;
        await flush();
        await db
          .updateTable('job_runs')
          .set({ ended_at: clock.nowMs(), outcome: 'succeeded', result: storedJson(result) })
          .where('id', '=', runId)
          .execute();
        log.info({ ms: clock.nowMs() - startedAt }, 'job succeeded');
        return result;
      } catch (e) {
        const msg = e instanceof AppError ? e.toLine() : (e as Error).message;
        await flush();
        const failure = e instanceof AppError ? { error_code: e.code, error_details: storedJson(e.details) } : {};
        await db
          .updateTable('job_runs')
          .set({ ended_at: clock.nowMs(), outcome: 'failed', error: msg.slice(0, 2000), ...failure })
          .where('id', '=', runId)
          .execute()
          .catch(() => undefined);
        log.error({ err: e }, 'job failed');
        throw e;
      } finally {
        clearInterval(renew);
        await this.leases.release(name).catch(() => undefined);
      }
    })();
    this.running.set(name, { abort, done: exec.catch(() => undefined) });
    try {
      return { runId, result: await exec };
    } finally {
      this.running.delete(name);
    }
  }

  /** JOB_BUSY, saying which run holds the job and where (details: `runId`). */
  private async busy(name: string, holder: LeaseHolder | null): Promise<AppError> {
    const run = await this.o.db
      .selectFrom('job_runs')
      .select(['id', 'started_at'])
      .where('job', '=', name)
      .where('outcome', '=', 'running')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    const runId = run ? Number(run.id) : null;
    const what = [
      runId !== null ? `run #${runId}, started ${new Date(Number(run!.started_at)).toISOString()}` : '',
      holder ? describeHolder(holder) : '',
    ]
      .filter(Boolean)
      .join(', ');
    return new AppError('JOB_BUSY', `job ${name} is already running${what ? ` (${what})` : ''}`, {
      httpStatus: 409,
      exitCode: 1,
      hint: 'wait for the current run to finish',
      details: { job: name, runId, ...(holder ? { host: holder.host, pid: holder.pid } : {}) },
    });
  }

  /** Starts cron triggers, marks runs abandoned by a crash, catches up missed slots and runs the jobs marked `runAtStart`. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.markAbandoned();
    for (const job of this.jobs.values()) {
      const expr = this.scheduleOf(job);
      if (!expr) continue;
      this.tasks.push(
        this.cron.schedule(expr, this.o.timeZone, (slot) => {
          this.fire(job.name, 'schedule', slot ?? previousFire(expr, this.o.timeZone, this.o.clock.nowMs()));
        }),
      );
    }
    await this.catchUp();
    for (const job of this.jobs.values()) if (job.runAtStart) this.fire(job.name, 'start', null);
    // several nodes (PostgreSQL): a run whose node died is taken over by another within half a lease
    if (this.leases.advisory) {
      this.watch = setInterval(
        () => void this.takeOverAbandoned().catch((e: unknown) => this.o.log.warn({ err: e }, 'job watch failed')),
        Math.max(1000, Math.floor(this.o.leaseTtlMs / 2)),
      );
      this.watch.unref();
    }
  }

  /** Runs again, here, the scheduled runs whose holder is gone (its lease free while still marked running). */
  async takeOverAbandoned(): Promise<string[]> {
    if (this.stopped) return [];
    const abandoned = await this.markAbandoned();
    for (const r of abandoned) {
      if (!this.jobs.has(r.job) || r.scheduledFor === null) continue;
      this.o.log.warn({ job: r.job, runId: r.id }, 'taking over a run whose node stopped');
      this.fire(r.job, 'catch-up', r.scheduledFor);
    }
    return abandoned.map((r) => r.job);
  }

  private fire(name: string, trigger: JobTrigger, slot: number | null): void {
    void this.run(name, { trigger, actor: `job:${name}`, scheduledFor: slot }).catch((e: unknown) => {
      if (e instanceof AppError && e.code === 'JOB_BUSY') this.o.log.warn({ job: name }, 'skipped: already running');
    });
  }

  /** For each scheduled job with catchUp, run it now if its latest slot has no run. */
  async catchUp(): Promise<string[]> {
    const started: string[] = [];
    for (const job of this.jobs.values()) {
      const expr = this.scheduleOf(job);
      if (!expr || !job.catchUp) continue;
      const slot = previousFire(expr, this.o.timeZone, this.o.clock.nowMs());
      if (slot === null) continue;
      const ran = await this.o.db
        .selectFrom('job_runs')
        .select('id')
        .where('job', '=', job.name)
        .where('outcome', 'in', ['succeeded', 'running'])
        .where('started_at', '>=', slot)
        .executeTakeFirst();
      if (!ran) {
        this.o.log.info({ job: job.name, slot: new Date(slot).toISOString() }, 'catching up a missed run');
        started.push(job.name);
        this.fire(job.name, 'catch-up', slot);
      }
    }
    return started;
  }

  /** Marks abandoned the runs still marked running whose lease nobody holds; returns them. */
  private async markAbandoned(): Promise<{ id: number; job: string; scheduledFor: number | null }[]> {
    const live = await this.leases.live();
    let q = this.o.db
      .updateTable('job_runs')
      .set({ outcome: 'abandoned', ended_at: this.o.clock.nowMs(), error: 'process stopped during the run' })
      .where('outcome', '=', 'running');
    if (live.length) q = q.where('job', 'not in', live);
    const rows = await q.returning(['id', 'job', 'scheduled_for']).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      job: r.job,
      scheduledFor: r.scheduled_for === null ? null : Number(r.scheduled_for),
    }));
  }

  /** Stops cron triggers, asks running jobs to stop at a safe point, waits up to `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    clearInterval(this.watch);
    for (const t of this.tasks.splice(0)) t.stop();
    const running = [...this.running.values()];
    for (const r of running) r.abort.abort();
    if (running.length) {
      await Promise.race([
        Promise.all(running.map((r) => r.done)),
        new Promise((res) => setTimeout(res, graceMs).unref()),
      ]);
    }
    // what did not stop within the grace writes nothing more (its lease expires, or is taken over
    // at once by the next process of this host once this one has exited)
    this.stopped = true;
  }

  /** One run by id, with its result or failure details; null when there is none. */
  async runById(id: number): Promise<JobRunDetail | null> {
    const r = await this.o.db.selectFrom('job_runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return null;
    const parse = (s: string | null): unknown => (s === null ? null : JSON.parse(s));
    return { ...toRecord(r), result: parse(r.result), errorCode: r.error_code, errorDetails: parse(r.error_details) };
  }

  async runs(job?: string, limit = 50): Promise<JobRunRecord[]> {
    let q = this.o.db.selectFrom('job_runs').selectAll().orderBy('id', 'desc').limit(limit);
    if (job) q = q.where('job', '=', job);
    return (await q.execute()).map(toRecord);
  }
}

const toRecord = (r: Selectable<CoreTables['job_runs']>): JobRunRecord => ({
  id: Number(r.id),
  job: r.job,
  trigger: r.trigger,
  actor: r.actor,
  scheduledFor: r.scheduled_for === null ? null : Number(r.scheduled_for),
  startedAt: Number(r.started_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
  outcome: r.outcome as JobRunRecord['outcome'],
  progress: r.progress ? (JSON.parse(r.progress) as JobProgress) : null,
  error: r.error,
});

/** A run's result or error details as stored (JSON, at most 64 KiB; larger or unserialisable: null). */
function storedJson(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  try {
    const s = JSON.stringify(v);
    return s !== undefined && s.length <= 65_536 ? s : null;
  } catch {
    return null;
  }
}
