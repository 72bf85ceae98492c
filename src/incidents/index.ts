export type { IncidentsTables } from './tables.js';
export {
  IncidentService,
  incidentErrors,
  BREACH_NOTIFY_MS,
  type IncidentServiceOptions,
  type CreateInput,
  type EditInput,
  type UpdateInput,
} from './service.js';
export { incidentRoutes, type IncidentRoutesOptions } from './routes.js';
export { incidentReport, reportCsv } from './report.js';
export * from './types.js';
