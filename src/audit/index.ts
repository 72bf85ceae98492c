export type { Auditor, AuditEvent, AuditSource } from './types.js';
export type { AuditTables } from './tables.js';
export { DbAuditor, type DbAuditorOptions } from './db/auditor.js';
export { auditSource } from './source.js';
export { verifyTrail, type VerifyReport, type VerifyOptions, type VerifyProblemCode } from './verify.js';
export { canonicalEncoding, chainHash, GENESIS_HASH, CHAIN_VERSION, type AuditRecord } from './canonical.js';
export { exportCheckpoint, parseExportedCheckpoint, type Checkpoint } from './checkpoint-format.js';
export { auditErrors } from './errors.js';
