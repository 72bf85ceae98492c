export { Scheduler, type SchedulerOptions, type RunOptions } from './scheduler.js';
export { clockCron, previousFire, nextFire, validateCron, type CronAdapter } from './cron.js';
export { Leases, makeHolderId, describeHolder, type LeaseHolder, type Acquired } from './leases.js';
export type { JobDefinition, JobContext, JobProgress, JobRunDetail, JobRunRecord, JobTrigger } from './types.js';
