import type { AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { FieldCipher } from '../keys/types.js';
import type { Auditor, AuditSource } from '../audit/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { AuthConfig } from '../config/sections/auth.js';

/** What the identity services share (built once in wire.ts). */
export interface AuthDeps {
  db: AuthDb;
  clock: Clock;
  log: Logger;
  fields: FieldCipher;
  audit: Auditor;
  alerts: Alerter;
  config: AuthConfig;
  /** every link is built from it, never from the Host header (R5) */
  publicUrl: string;
  /** organisation name: a context word refused in passwords */
  organisation?: string | undefined;
}

/** where a request came from, for the audit trail (L1) */
export type Source = AuditSource;
