export { BackupService, type BackupDeps, type RunReport, type TargetRunReport, type AddTargetInput, fmtBytes } from './service.js';
export { backupJobs, BACKUP_JOB, VERIFY_JOB, DRILL_JOB, WATCHDOG_JOB } from './jobs.js';
export { restoreInto, pickBackup, type RestoreOptions, type RestoreReport } from './restore.js';
export { openTarget, normaliseTargetUrl } from './registry.js';
export { backupRoutes } from './routes.js';
export { backupErrors, BackupError } from './errors.js';
export type { BackupTables } from './tables.js';
export type { BackupTarget, TargetSpec } from './targets/types.js';
export { slotName } from './retention.js';
