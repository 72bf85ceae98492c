import type { Generated } from 'kysely';

/** Tables owned by the core (jobs, appliance metadata). Modules declare theirs in their own tables.ts. */
export interface CoreTables {
  appliance_meta: { key: string; value: string };
  job_leases: { name: string; holder: string; acquired_at: number; expires_at: number };
  /** fixed-window request counters shared by the nodes (./counters.ts); key: SHA-256 of the limiter's key */
  rate_counters: { key: string; window_start: number; count: number; expires_at: number };
  job_runs: {
    id: Generated<number>;
    job: string;
    trigger: string; // 'schedule' | 'catch-up' | 'cli' | 'api' | 'start'
    actor: string;
    scheduled_for: number | null; // ms epoch of the slot it ran for
    started_at: number;
    ended_at: number | null;
    outcome: string; // 'running' | 'succeeded' | 'failed' | 'abandoned'
    progress: string | null; // JSON {phase, done, total, percent}
    error: string | null;
    result: string | null; // JSON: what the job returned (succeeded runs)
    error_code: string | null; // the AppError code (failed runs)
    error_details: string | null; // JSON: the AppError's details (failed runs, e.g. a per-target report)
  };
}
