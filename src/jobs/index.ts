export { Scheduler, type SchedulerOptions, type RunOptions } from './scheduler.js';
export { nodeCronAdapter, previousFire, nextFire, validateCron, type CronAdapter } from './cron.js';
export { Leases, makeHolderId } from './leases.js';
export type { JobDefinition, JobContext, JobProgress, JobRunRecord, JobTrigger } from './types.js';
