import type { Alert } from '../monitoring/types.js';
import type { Clock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { PendingTimestamps, Timestamper } from './types.js';

export interface TimestampRetrierOptions {
  tsa: Timestamper;
  sources: PendingTimestamps[];
  clock: Clock;
  log: Logger;
  retryMs: number;
  alertAfterMs: number;
  raise?: (a: Alert) => Promise<void>;
}

/**
 * Retries the timestamps left `pending` while no TSA answered (seals.tsa.retryMs), oldest first.
 * Raises `seals.timestamp_pending` once an item has waited seals.tsa.alertAfterMs, and
 * `seals.timestamp_ok` when everything pending got its timestamp again.
 */
export class TimestampRetrier {
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<{ granted: number; pending: number }> | undefined;
  private alerted = false;

  constructor(private readonly o: TimestampRetrierOptions) {}

  start(): void {
    if (this.timer || !this.o.tsa.configured) return;
    this.timer = setInterval(() => void this.tick().catch(() => undefined), this.o.retryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.busy?.catch(() => undefined);
  }

  /** One pass over every source; returns what was granted and what still waits. */
  tick(): Promise<{ granted: number; pending: number }> {
    this.busy ??= this.pass().finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async pass(): Promise<{ granted: number; pending: number }> {
    let granted = 0;
    let pending = 0;
    let oldest = Infinity;
    let down = false;
    for (const s of this.o.sources) {
      for (const item of await s.pending(100)) {
        if (!down) {
          try {
            const t = await this.o.tsa.timestamp(item.data);
            await s.granted(item.id, t);
            granted += 1;
            continue;
          } catch (e) {
            // one unreachable TSA answer is enough for this pass; a refused token is logged per item
            if (isAppError(e) && e.code === 'TSA_UNAVAILABLE') down = true;
            this.o.log.warn({ code: isAppError(e) ? e.code : undefined, source: s.name }, 'timestamp still pending');
          }
        }
        pending += 1;
        oldest = Math.min(oldest, item.since);
      }
    }
    const waited = this.o.clock.nowMs() - oldest;
    if (pending && waited >= this.o.alertAfterMs && !this.alerted) {
      this.alerted = true;
      await this.o
        .raise?.({
          kind: 'seals.timestamp_pending',
          severity: 'critical',
          message: `${pending} item(s) have waited ${Math.round(waited / 60_000)} min for their RFC 3161 timestamp: no time-stamping authority answered; they are retried every ${Math.round(this.o.retryMs / 1000)} s`,
        })
        .catch(() => undefined);
    } else if (!pending && this.alerted) {
      this.alerted = false;
      await this.o
        .raise?.({
          kind: 'seals.timestamp_ok',
          severity: 'info',
          message: `every pending item got its RFC 3161 timestamp (${granted} now)`,
        })
        .catch(() => undefined);
    }
    return { granted, pending };
  }
}
