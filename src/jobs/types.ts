import type { Logger } from '../shared/logger.js';

export interface JobProgress {
  phase: string;
  done?: number;
  total?: number;
  /** 0..100 */
  percent?: number;
  unit?: string;
}

export type JobTrigger = 'schedule' | 'catch-up' | 'cli' | 'api' | 'start';

export interface JobContext {
  runId: number;
  trigger: JobTrigger;
  /** the audited actor: `local:<os-user>`, `user:<id>` or `job:<name>` */
  actor: string;
  /** the slot this run is for (scheduled runs) */
  scheduledFor: number | null;
  /** the run's arguments (empty for scheduled runs) */
  params: Readonly<Record<string, string>>;
  /** aborted on shutdown: stop at the next safe point */
  signal: AbortSignal;
  log: Logger;
  /** recorded in the job-run row (throttled) and passed to the CLI's progress bar */
  progress(p: JobProgress): void;
}

/**
 * A job: one unit of appliance work that can run on a schedule and from the CLI, through the same
 * code. Runs of one job never overlap, across processes and nodes (database lease).
 */
export interface JobDefinition<R = unknown> {
  name: string;
  /** default cron expression in the appliance time zone; overridable by jobs.schedules */
  schedule?: string;
  /** when set, a scheduled slot missed while the appliance was down is run at start */
  catchUp?: boolean;
  /** when set, also run once when the scheduler starts (trigger `start`) */
  runAtStart?: boolean;
  run(ctx: JobContext): Promise<R>;
}

export interface JobRunRecord {
  id: number;
  job: string;
  trigger: string;
  actor: string;
  scheduledFor: number | null;
  startedAt: number;
  endedAt: number | null;
  outcome: 'running' | 'succeeded' | 'failed' | 'abandoned';
  progress: JobProgress | null;
  error: string | null;
}

/** One run with what it returned, or the code and details of its failure. */
export interface JobRunDetail extends JobRunRecord {
  result: unknown;
  errorCode: string | null;
  errorDetails: unknown;
}
