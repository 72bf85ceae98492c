import { t } from './i18n/index.js';

/** a role's name in the console's language (the stable role id when it has none) */
export function roleLabel(role: string): string {
  return role === 'admin' ||
    role === 'member' ||
    role === 'backup-operator' ||
    role === 'auditor' ||
    role === 'records-manager'
    ? t(`common.roles.${role}`)
    : role;
}

const OUTCOMES = ['running', 'succeeded', 'failed', 'abandoned'] as const;
const TRIGGERS = ['schedule', 'catch-up', 'cli', 'api', 'start'] as const;
const isOne = <T extends string>(v: string, list: readonly T[]): v is T => (list as readonly string[]).includes(v);

/** a job run's outcome in the console's language (the stable value when it has none) */
export function outcomeLabel(v: string): string {
  return isOne(v, OUTCOMES) ? t(`operations.outcome.${v}`) : v;
}

/** what started a job run (schedule, CLI, console…) in the console's language */
export function triggerLabel(v: string): string {
  return isOne(v, TRIGGERS) ? t(`operations.jobs.trigger.${v}`) : v;
}
