import type { Kysely } from 'kysely';
import type { PrivacySchema } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import type { UserDirectory } from '../auth/index.js';
import type { Auditor } from '../audit/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { PrivacyConfig } from '../config/sections/privacy.js';

/** What the privacy module needs from the rest of the appliance (wired in src/main.ts). */
export interface PrivacyDeps {
  db: Kysely<PrivacySchema>;
  clock: Clock;
  log: Logger;
  fields: FieldCipher;
  users: UserDirectory;
  audit: Auditor;
  /** config section `privacy` */
  config: PrivacyConfig;
  /** crypto-shreds a named data key and scrubs the database files (DbDataKeys.destroyNamed) */
  shred(name: string): Promise<{ destroyed: boolean; scrubbed: boolean }>;
}
