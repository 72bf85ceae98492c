export {
  BackupService,
  type BackupDeps,
  type BackupServiceConfig,
  type RunReport,
  type TargetRunReport,
  type AddTargetInput,
  fmtBytes,
} from './service.js';
export { backupJobs, BACKUP_JOB, VERIFY_JOB, DRILL_JOB, WATCHDOG_JOB } from './jobs.js';
export { restoreInto, pickBackup, type RestoreOptions, type RestoreReport } from './restore.js';
export { openTarget, normaliseTargetUrl, targetOptions, targetRef, type TargetOptions } from './registry.js';
export { parseHostKey } from './targets/sftp.js';
export { backupRoutes } from './routes.js';
export { publicChange, changeDigest, type ChangeRequest, type Change } from './requests.js';
export { backupErrors, BackupError } from './errors.js';
export type { BackupTables } from './tables.js';
export type { BackupTarget, TargetSpec } from './targets/types.js';
export { slotName } from './retention.js';
export { backupKeyHolder } from './catalogue.js';
export { secondaryDrill, DRILL_REPORTS, type DrillReport } from './secondary.js';
