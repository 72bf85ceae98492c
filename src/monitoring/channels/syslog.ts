import type { AlertChannel } from '../types.js';
import { alertMessage, type SyslogHeader } from '../../audit/syslog/format.js';

/** Sends alerts to the SIEM over the audit trail's syslog connection (RFC 5424, MSGID `alert`). */
export class SyslogAlertChannel implements AlertChannel {
  readonly name = 'syslog';
  constructor(
    private readonly sink: { sendAlert(message: string): void },
    private readonly header: SyslogHeader,
  ) {}

  async send(a: Parameters<AlertChannel['send']>[0]): Promise<void> {
    this.sink.sendAlert(alertMessage(this.header, { ...a }));
  }
}
