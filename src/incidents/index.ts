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
export { IncidentNotices, type PublicIncident, type Banner } from './notices.js';
export { noticeRoutes } from './notice-routes.js';
export { statusRoutes, statusPage } from './status-page.js';
export { IncidentMail, incidentMail, type Recipient } from './mail.js';
export { alertDraftJob, draftFromAlerts, backupStaleWaitMs, DRAFT_ALERTS, type DraftTiming } from './alert-drafts.js';
