export type { Alert, Alerter, AlertChannel, AlertNotice } from './types.js';
export type { MonitoringTables } from './tables.js';
export {
  DbAlerter,
  type DbAlerterOptions,
  type DeliveredAlert,
  type AlertView,
  type AlertState,
  type Severity,
} from './alerter.js';
export { AlertOutbox, type OutboxOptions } from './outbox.js';
export { SyslogAlertChannel } from './channels/syslog.js';
export { EmailAlertChannel, alertMailText, type AlertMailer } from './channels/email.js';
export {
  WebhookAlertChannel,
  webhookSignature,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  DELIVERY_HEADER,
} from './channels/webhook.js';
export { createAlertChannels, type AlertChannelsOptions } from './registry.js';
export { wireMonitoring, type Monitoring, type MonitoringOptions } from './wire.js';
export { MetricStore, type Sample, type Series } from './metric-store.js';
export { Sampler, HttpStats, METRIC_HELP } from './sampler.js';
export { RuleEngine, type Finding, type RuleEngineOptions } from './rules.js';
