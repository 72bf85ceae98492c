import type { Kysely } from 'kysely';
import type { AuditSchema, SharedDb } from '../db/index.js';

/** Where a request came from. */
export interface AuditSource {
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

/**
 * One security-relevant event. Never holds a secret or confidential plaintext: ids, not names.
 * `action` is dotted, e.g. `auth.login`, `doc.read`, `backup.run`, `keys.rotate`.
 */
export interface AuditEvent {
  action: string;
  /** `user:<id>`, `token:<id>`, `local:<os-user>`, `job:<name>`, `anonymous`, `system` (appliance start/stop) */
  actor: string;
  outcome: 'success' | 'failure' | 'denied';
  /** stable reason code when not success, e.g. `BAD_PASSWORD`, `THROTTLED` */
  reason?: string;
  /** ids of what was acted upon, e.g. { workspace: '…', document: '…' } */
  targets?: Record<string, string>;
  source?: AuditSource;
}

/** Where a record sits in the chain: its sequence number and chain hash (docs/formats.md "Audit chain"). */
export interface AuditStamp {
  seq: number;
  hash: string;
}

/**
 * The audit trail's write side (fail closed).
 * `record(trx, e)` writes inside the caller's transaction: if it throws, the caller's change
 * rolls back. `recordNow(e)` writes in its own transaction (reads are recorded before the data
 * is released; denials and failed logins have no other change to join).
 */
export interface Auditor {
  /** resolves with the appended record's place in the chain (committed with the caller's transaction) */
  record(trx: SharedDb, e: AuditEvent): Promise<AuditStamp>;
  recordNow(e: AuditEvent): Promise<void>;
}
