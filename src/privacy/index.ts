export { PrivacyService } from './service.js';
export type { PrivacyDeps } from './types.js';
export { privacyRoutes } from './routes.js';
export { collectPerson, exportMembers, zipExport, EXPORT_FORMAT, type PersonExport } from './export.js';
export { Erasure, type ErasurePlan, type ErasureResult, type Handover } from './erase.js';
export { ropaHtml } from './ropa.js';
