export type { Sealer, SealCertificate } from './types.js';
export type { SealsTables } from './tables.js';
export { HsmSealer, SEAL_KEY, type HsmSealerOptions } from './sealer.js';
export { rawToDer, parseCert, type SealIdentity } from './certificate.js';
export { sealsErrors } from './errors.js';
