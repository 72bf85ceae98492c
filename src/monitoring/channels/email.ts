import type { AlertChannel, AlertNotice } from '../types.js';

/** What the e-mail channel needs from the mail module (src/auth/messaging.ts `smtpSender`). */
export interface AlertMailer {
  send(m: { to: string; subject: string; text: string }): Promise<void>;
}

const NOTICE = { raised: 'ALERT', reminder: 'REMINDER', resolved: 'RESOLVED' } as const;

/** The alert's fields as a block of `name: value` lines, then the same as one JSON line (for mail filters and scripts). */
export function alertMailText(a: AlertNotice): string {
  const lines = [
    a.message,
    '',
    `notice:    ${a.notice ?? 'raised'}`,
    `kind:      ${a.kind}`,
    `severity:  ${a.severity}`,
    `raised at: ${a.at}`,
    `appliance: ${a.applianceId}`,
    `alert id:  ${a.id}`,
    ...Object.entries(a.targets ?? {}).map(([k, v]) => `${`${k}:`.padEnd(10)} ${v}`),
    '',
    'Acknowledge or resolve it in the console (Operations > Alerts).',
    '',
    `coffre-alert: ${JSON.stringify({ type: 'coffre.alert', ...a })}`,
  ];
  return lines.join('\n');
}

/**
 * E-mail through the appliance's SMTP relay (mail.smtp, STARTTLS required by default). One
 * message per notice to every recipient; delivered once the relay accepted it.
 */
export class EmailAlertChannel implements AlertChannel {
  readonly name = 'email';
  constructor(
    private readonly mailer: AlertMailer,
    private readonly to: readonly string[],
  ) {}

  async send(a: AlertNotice): Promise<void> {
    const head = `[Coffre ${NOTICE[a.notice ?? 'raised']}] ${a.severity.toUpperCase()} ${a.kind}`;
    await this.mailer.send({
      to: this.to.join(', '),
      subject: `${head}: ${a.message.replace(/\s+/g, ' ')}`.slice(0, 200),
      text: alertMailText(a),
    });
  }
}
