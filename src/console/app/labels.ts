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
