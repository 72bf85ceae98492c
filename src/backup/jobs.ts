import type { JobDefinition } from '../jobs/types.js';
import type { BackupService } from './service.js';

/**
 * The backup jobs (src/jobs): the daily backup at backup.time (site time zone), the weekly full
 * verification and restore drill, and the hourly watchdog (dead-man alarm at backup.deadManHours,
 * expired backups destroyed even when the daily job does not run). `jobs.schedules.<name>`
 * overrides any of them with a cron expression.
 */
export const BACKUP_JOB = 'backup';
export const VERIFY_JOB = 'backup.verify';
export const DRILL_JOB = 'backup.drill';
export const WATCHDOG_JOB = 'backup.watchdog';

export function backupJobs(s: BackupService, time: string): JobDefinition[] {
  const [hh, mm] = time.split(':').map(Number) as [number, number];
  return [
    {
      name: BACKUP_JOB,
      schedule: `${mm} ${hh} * * *`,
      catchUp: true,
      // scheduled runs wait for a verify or drill in progress; the CLI says "busy" at once
      run: (ctx) =>
        s.run({
          actor: ctx.actor,
          progress: ctx.progress,
          signal: ctx.signal,
          wait: ctx.trigger !== 'cli' && ctx.trigger !== 'api',
        }),
    },
    // weekly: every live backup; with params.id (the API, a remote `coffre backup verify ID`): that one
    {
      name: VERIFY_JOB,
      schedule: '0 4 * * 0',
      catchUp: true,
      run: (ctx) =>
        ctx.params['id']
          ? s.verify(ctx.params['id'], { actor: ctx.actor, progress: ctx.progress, signal: ctx.signal })
          : s.verifyAll({ actor: ctx.actor, progress: ctx.progress, signal: ctx.signal }),
    },
    // scheduled drills wait for a backup in progress and skip when there is none; the API's fail at once
    {
      name: DRILL_JOB,
      schedule: '0 5 * * 0',
      catchUp: true,
      run: (ctx) =>
        s.drill({
          actor: ctx.actor,
          progress: ctx.progress,
          signal: ctx.signal,
          wait: ctx.trigger !== 'api',
          skipWhenNone: ctx.trigger !== 'api',
        }),
    },
    { name: WATCHDOG_JOB, schedule: '17 * * * *', run: (ctx) => s.watchdog({ actor: ctx.actor }) },
  ];
}
