import fs from 'node:fs';
import type { AlertChannel } from './types.js';
import type { Severity } from './alerter.js';
import { SyslogAlertChannel } from './channels/syslog.js';
import { EmailAlertChannel, type AlertMailer } from './channels/email.js';
import { WebhookAlertChannel } from './channels/webhook.js';
import type { MonitoringConfig } from '../config/sections/monitoring.js';
import type { AuditSyslogConfig } from '../config/sections/audit.js';
import { readSecretFile } from '../config/index.js';
import { AppError } from '../shared/errors.js';

export interface AlertChannelsOptions {
  alerts: MonitoringConfig['alerts'];
  /** the audit trail's collector (alerts ride their own connection to it) */
  syslog: AuditSyslogConfig;
  /** the appliance's SMTP sender (mail.smtp), when one is configured */
  mailer: AlertMailer | undefined;
}

/**
 * The one place that knows every AlertChannel: e-mail (mail.smtp to
 * monitoring.alerts.email.to), syslog (audit.syslog's collector), webhook (HTTPS, HMAC-signed).
 */
export function createAlertChannels(o: AlertChannelsOptions): {
  channels: AlertChannel[];
  minSeverity: Record<string, Severity>;
} {
  const channels: AlertChannel[] = [];
  const minSeverity: Record<string, Severity> = {};
  const { email, syslog, webhook } = o.alerts;
  if (email.to.length) {
    if (!o.mailer)
      throw new AppError(
        'CONFIG_INVALID',
        'monitoring.alerts.email.to names recipients but no mail server is configured',
        { exitCode: 2, hint: 'configure mail.smtp, or empty monitoring.alerts.email.to' },
      );
    channels.push(new EmailAlertChannel(o.mailer, email.to));
    minSeverity.email = email.minSeverity;
  }
  if (syslog.enabled && o.syslog.enabled) {
    channels.push(new SyslogAlertChannel(o.syslog, { facility: o.syslog.facility, appName: o.syslog.appName }));
    minSeverity.syslog = syslog.minSeverity;
  }
  if (webhook) {
    const secret = readSecretFile(webhook.secretFile, 'monitoring.alerts.webhook.secretFile');
    if (secret.length < 16)
      throw new AppError('CONFIG_INVALID', 'monitoring.alerts.webhook.secretFile must hold at least 16 characters', {
        exitCode: 2,
      });
    let ca: Buffer | undefined;
    try {
      ca = webhook.caFile ? fs.readFileSync(webhook.caFile) : undefined;
    } catch (e) {
      throw new AppError(
        'CONFIG_INVALID',
        `monitoring.alerts.webhook.caFile: cannot read ${webhook.caFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        { exitCode: 2 },
      );
    }
    channels.push(
      new WebhookAlertChannel({ url: webhook.url, secret, ca, timeoutMs: webhook.timeoutMs, retries: webhook.retries }),
    );
    minSeverity.webhook = webhook.minSeverity;
  }
  return { channels, minSeverity };
}
