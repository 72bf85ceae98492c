/** Tables owned by the alerts part of monitoring (migrations/2026-11-22T1600-monitoring.ts). */
export interface MonitoringTables {
  alerts: {
    id: string;
    /** ms since the epoch, UTC */
    at: number;
    kind: string;
    severity: string;
    /** human text, never a secret or confidential plaintext */
    message: string;
    /** JSON object of ids, or NULL */
    targets: string | null;
    /** JSON { channel: 'sent' | 'failed: CODE' } once delivery was tried, or NULL */
    deliveries: string | null;
    /** raised again while suppressed (same kind and targets within the dedupe window) */
    repeats: number;
  };
}
