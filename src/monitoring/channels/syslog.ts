import type { AuditSyslogConfig } from '../../config/sections/audit.js';
import { alertMessage, type SyslogHeader } from '../../audit/syslog/format.js';
import { connectSyslog, type SyslogConnection } from '../../audit/syslog/transport.js';
import { AppError } from '../../shared/errors.js';
import type { AlertChannel, AlertNotice } from '../types.js';

/**
 * Sends alerts to the SIEM's syslog collector (RFC 5424, MSGID `alert`; RFC 5425 framing over
 * TLS), on a connection of its own per notice: syslog has no acknowledgement, so a notice counts
 * as delivered once the collector has closed the session cleanly after reading it (over UDP, once
 * the datagram is sent). Any process can deliver, not only the one holding the audit export.
 */
export class SyslogAlertChannel implements AlertChannel {
  readonly name = 'syslog';
  constructor(
    private readonly cfg: AuditSyslogConfig,
    private readonly header: SyslogHeader,
    private readonly connect: (cfg: AuditSyslogConfig) => Promise<SyslogConnection> = (cfg) =>
      connectSyslog({ cfg, timeoutMs: 10_000 }),
    private readonly closeTimeoutMs = 10_000,
  ) {}

  async send(a: AlertNotice): Promise<void> {
    const conn = await this.connect(this.cfg);
    try {
      await conn.send([alertMessage(this.header, { ...a })]);
    } catch (e) {
      conn.close();
      throw new AppError(
        'ALERT_CHANNEL_FAILED',
        `syslog collector broke the connection (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: e },
      );
    }
    conn.close();
    if (this.cfg.transport === 'udp') return;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      conn.closed,
      new Promise<Error>((r) => (timer = setTimeout(() => r(new Error('timeout')), this.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome)
      throw new AppError(
        'ALERT_CHANNEL_FAILED',
        `syslog collector did not close the session cleanly (${(outcome as NodeJS.ErrnoException).code ?? outcome.message}); the alert is resent`,
      );
  }
}
