export { VaultService } from './service.js';
export type { VaultDeps } from './core.js';
export type { SealedBlobs, WorkspaceAccess, WorkspaceView, VaultCaller } from './types.js';
export type { VaultTables } from './tables.js';
export { vaultRoutes, type VaultRoutesOptions } from './routes.js';
export { vaultJobs } from './jobs.js';
export { referencedBlobIds } from './blob-refs.js';
export { vaultErrors } from './errors.js';
export { isVaultBlob } from './core.js';
