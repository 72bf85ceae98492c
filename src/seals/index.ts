export type { Sealer, SealCertificate, Timestamper, PendingTimestamps } from './types.js';
export type { SealsTables } from './tables.js';
export { HsmSealer, SEAL_KEY, type HsmSealerOptions } from './sealer.js';
export { rawToDer, parseCert, type SealIdentity } from './certificate.js';
export { sealsErrors } from './errors.js';
export { TsaClient, tsaErrors, type Timestamp } from './tsa.js';
export { TimestampRetrier, type TimestampRetrierOptions } from './retrier.js';
