import { Type, type Static } from '@sinclair/typebox';

/** Daily encrypted backups to a distant site in the same jurisdiction (src/backup/, docs/disaster-recovery.md). */
export const BackupSection = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    /** local time (site.timeZone) of the daily backup, HH:MM; jobs.schedules.backup overrides it with a cron expression */
    time: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', default: '02:30' }),
    /** a target closer than this to the appliance (great-circle, declared sites) is refused */
    minDistanceKm: Type.Number({ minimum: 0, default: 100 }),
    /** jurisdictions (ISO 3166-1 alpha-2) allowed besides the appliance's own; empty: only its own */
    allowedJurisdictions: Type.Array(Type.String({ pattern: '^[A-Z]{2}$' }), { default: [] }),
    /** a backup is destroyed at the latest 7 days plus this many hours after it was taken */
    graceHours: Type.Integer({ minimum: 1, maximum: 48, default: 12 }),
    /** alert when no backup has been verified for this long */
    deadManHours: Type.Integer({ minimum: 2, maximum: 24 * 7, default: 26 }),
    /** upload and download rate limit in KiB/s; 0: unlimited */
    bandwidthLimitKiBps: Type.Integer({ minimum: 0, default: 0 }),
    /**
     * plaintext MiB per part (each part is one OpenPGP message and one file at the target). Peak
     * memory grows with partSizeMiB × (workers + 1 + partsInFlight); on a long-latency link, larger
     * parts and more in flight hide the per-file round trips
     */
    partSizeMiB: Type.Integer({ minimum: 1, maximum: 256, default: 2 }),
    /** encryption/decryption worker threads; 0 works on the main thread. One keeps up with the rest of the pipeline on a 2-core appliance; more help with more cores */
    workers: Type.Integer({ minimum: 0, maximum: 16, default: 1 }),
    /** parts being encrypted or uploaded at once (memory ≈ (workers + 1 + this) × part size) */
    partsInFlight: Type.Integer({ minimum: 1, maximum: 32, default: 3 }),
    /** retries of a transient target failure within a run, with exponential back-off from retryBaseMs */
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 4 }),
    retryBaseMs: Type.Integer({ minimum: 1, default: 2000 }),
    connectTimeoutMs: Type.Integer({ minimum: 1000, default: 20_000 }),
    /** a target operation with requests in flight and no answer (no byte moved) for this long fails with TARGET_STALLED */
    stallTimeoutMs: Type.Integer({ minimum: 1000, default: 60_000 }),
    /** local scratch space for the database snapshot, verification and restore drills */
    scratchDir: Type.String({ default: 'tmp/backup' }),
    /** documents whose content the weekly restore drill decrypts and compares */
    drillSamples: Type.Integer({ minimum: 0, maximum: 1000, default: 5 }),
    /** a change to targets or escrow keys asked for through the API waits this long for an admin's approval, then expires (src/backup/requests.ts) */
    approvalTtlHours: Type.Integer({ minimum: 1, maximum: 24 * 30, default: 72 }),
  },
  { additionalProperties: false, default: {} },
);
export type BackupConfig = Static<typeof BackupSection>;
