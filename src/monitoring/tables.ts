import type { Generated } from 'kysely';

/**
 * Tables owned by monitoring (migrations/2026-11-22T1600-monitoring.ts,
 * migrations/2026-12-07T0035-monitoring-outbox.ts).
 */
export interface MonitoringTables {
  alerts: {
    id: string;
    /** ms since the epoch, UTC: when it was first raised */
    at: number;
    kind: string;
    severity: string;
    /** human text, never a secret or confidential plaintext */
    message: string;
    /** JSON object of ids, or NULL */
    targets: string | null;
    /** JSON { channel: 'pending' | 'sent' | 'failed: CODE' } of the latest notice, or NULL */
    deliveries: string | null;
    /** raised again while open (same kind and targets) */
    repeats: number;
    /** kind + sorted targets: one open alert per key */
    dedupe_key: string | null;
    /** 'open' | 'acknowledged' | 'resolved' */
    state: Generated<string>;
    /** last time it was raised (or repeated) */
    last_at: number | null;
    /** last time a notice (raise or reminder) was queued for the channels */
    notified_at: number | null;
    acked_at: number | null;
    acked_by: string | null;
    resolved_at: number | null;
    /** 'rule' (the condition cleared), 'user:<id>', 'local:<os-user>' */
    resolved_by: string | null;
  };
  /** one row per (notice, channel); written in the raising transaction, delivered under a lease */
  alert_outbox: {
    id: Generated<number>;
    alert_id: string;
    channel: string;
    /** 'raised' | 'reminder' | 'resolved' */
    notice: string;
    /** the JSON handed to the channel */
    payload: string;
    created_at: number;
    next_at: number;
    attempts: number;
    holder: string | null;
    lease_until: number | null;
    sent_at: number | null;
    /** gave up after the last attempt */
    failed_at: number | null;
    last_error: string | null;
  };
  /** metric points: `res` 60000 for a day, then 900000 up to the retention */
  metric_samples: {
    name: string;
    /** canonical JSON of the label set, `{}` when none */
    labels: string;
    res: number;
    /** start of the bucket, ms */
    at: number;
    /** mean over the bucket */
    value: number;
    max: number;
    /** samples merged into the bucket */
    n: number;
  };
}
