export { VaultService } from './service.js';
export type { VaultDeps } from './core.js';
export type {
  SealedBlobs,
  WorkspaceAccess,
  WorkspaceView,
  VaultCaller,
  GuardedDocument,
  DestructionRecord,
  RetentionGuard,
  ActorNames,
  ReceiptIssuer,
  ReportStamper,
  ReportKeeper,
} from './types.js';
export type { VaultTables } from './tables.js';
export { vaultRoutes, type VaultRoutesOptions } from './routes.js';
export { vaultJobs } from './jobs.js';
export { referencedBlobIds } from './blob-refs.js';
export { vaultErrors } from './errors.js';
export { isVaultBlob } from './core.js';
import { ctx } from './core.js';
/** the field context of a version's encrypted SHA-256 (docs/formats.md "Vault") */
export const versionDigestContext = ctx.versionDigest;
export { wireVault, type Vault, type VaultWiring } from './wire.js';
export { sealedBlobs } from './sealed.js';
export { policyAccess, type WorkspacePolicy } from './access.js';
export type { DocumentPlace } from './locate.js';
export type { VerifyReport, VerifyFailure, VerifyScope, VerifyOptions } from './verify.js';
