/**
 * Alerts: suspicious activity and operational failures (backup target down, integrity mismatch,
 * HSM down, brute force). Raised by any module and any process (server, CLI, scheduled job);
 * recorded, audited (`alert.raised`) and delivered to the configured channels (AlertChannel:
 * e-mail, syslog, webhook) through the database outbox (src/monitoring/outbox.ts).
 */
export interface Alert {
  /** stable kind, e.g. `backup.failed`, `auth.bruteforce`, `vault.integrity`, `keys.unavailable` */
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  /** human text; never a secret or confidential plaintext */
  message: string;
  /** ids only (user, target, backup…), never names */
  targets?: Record<string, string>;
}

export interface Alerter {
  /**
   * Raises an alert. While an alert of the same kind and targets is open, a new raise is counted
   * as a repeat (no new notice; a reminder after the re-notification interval if nobody
   * acknowledged it).
   */
  raise(a: Alert): Promise<void>;
  /** The condition behind an alert ended: resolves the open alert of that kind and targets, if any. */
  clear?(a: Pick<Alert, 'kind' | 'targets'>): Promise<void>;
}

/** What a channel delivers: an alert, and which notice of its life this is. */
export interface AlertNotice extends Alert {
  /** the alert's id (the same for its raise, reminders and resolution) */
  id: string;
  /** when the alert was first raised (ISO 8601, UTC) */
  at: string;
  applianceId: string;
  /** `raised` (default), `reminder` (still open, nobody acknowledged), `resolved` */
  notice?: 'raised' | 'reminder' | 'resolved';
  /** unique per notice and channel, the same across retries: receivers deduplicate on it */
  deliveryId?: string;
}

/**
 * One delivery channel. `send` resolves only once the other end has the notice
 * (SMTP accepted it, the syslog collector closed the TLS session cleanly after reading it, the
 * webhook answered 2xx) and rejects otherwise; the outbox retries a rejected notice later, so a
 * channel may see the same `deliveryId` twice after a crash, never a notice that was lost.
 */
export interface AlertChannel {
  readonly name: string;
  send(a: AlertNotice): Promise<void>;
}
