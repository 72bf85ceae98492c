import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { HttpSection, TlsSection } from './sections/http.js';
import { DatabaseSection } from './sections/database.js';
import { KeysSection } from './sections/keys.js';
import { SiteSection } from './sections/site.js';
import { JobsSection } from './sections/jobs.js';
import { LoggingSection } from './sections/logging.js';
import { StorageSection } from './sections/storage.js';
import { AuditSection } from './sections/audit.js';
import { VaultSection } from './sections/vault.js';
import { AuthSection } from './sections/auth.js';
import { MailSection } from './sections/mail.js';
import { BackupSection } from './sections/backup.js';
import { MonitoringSection } from './sections/monitoring.js';
import { SealsSection } from './sections/seals.js';
import { PrivacySection } from './sections/privacy.js';

/**
 * The whole configuration: one file `<data dir>/config.json` plus `COFFRE_*` overrides.
 * Each module owns one section under ./sections/. Unknown keys are errors. Every key has a label
 * in French and English for the console's Settings page (docs/i18n.md, settings.labels.*).
 *
 * Path convention: every string whose key is `file`, `dir` or ends in `File` or `Dir`
 * (and `keys.module`) is resolved against the data dir when relative.
 * Secrets are never values here: only `…File` paths to files holding them.
 */
export const sections = {
  http: HttpSection,
  tls: TlsSection,
  database: DatabaseSection,
  keys: KeysSection,
  storage: StorageSection,
  site: SiteSection,
  jobs: JobsSection,
  logging: LoggingSection,
  audit: AuditSection,
  vault: VaultSection,
  auth: AuthSection,
  mail: MailSection,
  backup: BackupSection,
  monitoring: MonitoringSection,
  seals: SealsSection,
  privacy: PrivacySection,
} satisfies Record<string, TSchema>;

export const ConfigSchema = Type.Object(
  {
    /** format version of this file */
    version: Type.Literal(1, { default: 1 }),
    /** stable id of this appliance (set by `coffre init`) */
    applianceId: Type.String({ minLength: 8 }),
    ...sections,
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigSchema>;
export type Config = Readonly<ConfigFile & { dataDir: string }>;
