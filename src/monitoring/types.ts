/**
 * Alerts: suspicious activity and operational failures (backup target down, integrity mismatch,
 * HSM down, brute force). Raised by any module; recorded, audited (`alert.raised`) and sent to
 * the configured channels (AlertChannel: e-mail, syslog, webhook).
 */
export interface Alert {
  /** stable kind, e.g. `backup.failed`, `auth.bruteforce`, `vault.integrity`, `keys.down` */
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  /** human text; never a secret or confidential plaintext */
  message: string;
  targets?: Record<string, string>;
}

export interface Alerter {
  raise(a: Alert): Promise<void>;
}

/** One delivery channel (STYLE.md #1). */
export interface AlertChannel {
  readonly name: string;
  send(a: Alert & { id: string; at: string; applianceId: string }): Promise<void>;
}
