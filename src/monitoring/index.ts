export type { Alert, Alerter, AlertChannel } from './types.js';
export type { MonitoringTables } from './tables.js';
export { DbAlerter, type DbAlerterOptions, type DeliveredAlert } from './alerter.js';
export { SyslogAlertChannel } from './channels/syslog.js';
export { createAlertChannels } from './registry.js';
