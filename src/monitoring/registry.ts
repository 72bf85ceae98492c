import type { AlertChannel } from './types.js';
import { SyslogAlertChannel } from './channels/syslog.js';
import type { SyslogHeader } from '../audit/syslog/format.js';

/**
 * The one place that knows every AlertChannel (STYLE.md #4).
 * - syslog: over the audit trail's syslog connection, when `audit.syslog.enabled`;
 * - e-mail: to be added here by the module that owns SMTP (an `EmailAlertChannel` implementing
 *   AlertChannel over nodemailer, configured by a `monitoring.alerts.email` section);
 * - webhook: likewise.
 */
export function createAlertChannels(o: { syslog?: { sink: { sendAlert(message: string): void }; header: SyslogHeader } | undefined }): AlertChannel[] {
  const channels: AlertChannel[] = [];
  if (o.syslog) channels.push(new SyslogAlertChannel(o.syslog.sink, o.syslog.header));
  return channels;
}
