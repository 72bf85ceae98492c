export type * from './types.js';
export { storageErrors, BLOB_ID } from './errors.js';
export { createBlobStore } from './registry.js';
