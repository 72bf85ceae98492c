import { lookup, t } from '../i18n/index.js';

/**
 * The words the Settings page shows for the configuration's sections and keys, in the console's
 * language: `settings.sections.<section>` and `settings.labels.<section>.<key>` in the catalogues,
 * one label for every key of the schema (src/config/schema.ts; test/i18n/setting-labels.test.ts).
 */

export const SECTIONS = [
  'http',
  'tls',
  'database',
  'keys',
  'storage',
  'site',
  'jobs',
  'logging',
  'audit',
  'vault',
  'auth',
  'mail',
  'backup',
  'monitoring',
  'seals',
  'privacy',
] as const;
export const sectionTitle = (name: string): string =>
  (SECTIONS as readonly string[]).includes(name) ? t(`settings.sections.${name as (typeof SECTIONS)[number]}`) : name;

/** a configuration key in words: `idleTimeoutMinutes` → "Idle timeout minutes", `smtp.host` → "Smtp · host" */
export function humanKey(key: string): string {
  const words = key
    .split('.')
    .map((k) =>
      k
        .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
        .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
        .toLowerCase(),
    )
    .join(' · ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * The label of a value in its section: the catalogue's `settings.labels.<section>.<key>`. An entry
 * the schema does not name (one job of `jobs.schedules`, one route group of `monitoring.budgets`)
 * is shown under the label of the key that holds it, or else of its section, followed by its name.
 */
export function settingLabel(section: string, key: string): string {
  const parts = key.split('.');
  for (let n = parts.length; n > 0; n--) {
    const label = lookup(`settings.labels.${section}.${parts.slice(0, n).join('.')}`);
    if (label !== undefined) return n === parts.length ? label : `${label} · ${parts.slice(n).join(' · ')}`;
  }
  return `${sectionTitle(section)} · ${humanKey(key)}`;
}
