import type { Auditor } from '../audit/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { sha256 } from './secrets.js';

export interface FloodConfig {
  /** failed authentications per address per minute before 429 */
  badCredentialsPerMinute: number;
  /** failed authentications from all addresses in one minute that raise `auth.flood` */
  floodAlertPerMinute: number;
  /** how long a refused request is held before its 429 (the client waits; no work is done) */
  refusalDelayMs: number;
}

interface Bucket {
  minute: number;
  failures: number;
  refused: number;
  userAgent?: string | undefined;
}

const MINUTE = 60_000;
/** addresses tracked at once; past it, new addresses share one bucket (`many`) */
const MAX_ADDRESSES = 50_000;
/** credentials that authenticated recently pass a flooded address's gate (they are still checked) */
const VOUCHED_MS = 10 * MINUTE;
const MAX_VOUCHED = 20_000;

/**
 * Failed bearer-token and cookie authentication, limited per address before any database work
 * (docs/brute-force.md), in memory (each node keeps its own counts; a flood spread over nodes is still
 * cut on each). Refusals are recorded in aggregate: one `auth.refused` audit record per address and
 * minute, with the counts. A burst raises `auth.flood` (per address once it is cut off, and for
 * all addresses together past `floodAlertPerMinute`).
 *
 * A credential that authenticated in the last minutes is *vouched for*: it still reaches the
 * database (revocation applies at once) even while its address is cut off, so a flood from a
 * shared address does not log out the people behind it.
 */
export class FailedAuthLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly vouched = new Map<string, number>();
  private total = { minute: 0, failures: 0 };
  private flushedMinute = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: { clock: Clock; audit: Auditor; alerts: Alerter; log: Logger; cfg: FloodConfig }) {
    this.timer = setInterval(() => void this.flush(), 5_000);
    this.timer.unref();
  }

  private minute(): number {
    return Math.floor(this.o.clock.nowMs() / MINUTE);
  }

  private bucket(prefix: string): { key: string; b: Bucket } {
    const m = this.minute();
    if (m !== this.flushedMinute) void this.flush();
    const key = this.buckets.has(prefix) || this.buckets.size < MAX_ADDRESSES ? prefix : 'many';
    let b = this.buckets.get(key);
    if (!b || b.minute !== m) {
      b = { minute: m, failures: 0, refused: 0 };
      this.buckets.set(key, b);
    }
    return { key, b };
  }

  /** how long a refused request is held before its answer (`check` said to wait) */
  get refusalDelayMs(): number {
    return this.o.cfg.refusalDelayMs;
  }

  /**
   * Seconds this request must wait when its address is over the budget and its credential is not
   * vouched for (0: go on). Counts the refusal. No database work.
   */
  check(prefix: string, credential: string, userAgent: string | undefined): number {
    const { b } = this.bucket(prefix);
    if (b.failures < this.o.cfg.badCredentialsPerMinute) return 0;
    const v = this.vouched.get(sha256(credential));
    if (v !== undefined && v > this.o.clock.nowMs()) return 0;
    b.refused++;
    b.userAgent ??= userAgent;
    this.countTotal(b.minute);
    return Math.max(1, Math.ceil(((b.minute + 1) * MINUTE - this.o.clock.nowMs()) / 1000));
  }

  /** one failed authentication from this address */
  failed(prefix: string, userAgent: string | undefined): void {
    const { key, b } = this.bucket(prefix);
    b.failures++;
    b.userAgent ??= userAgent;
    this.countTotal(b.minute);
    if (b.failures === this.o.cfg.badCredentialsPerMinute) {
      this.alert(
        'warning',
        `${b.failures} failed authentications (bad token or cookie) from ${key} within a minute: further ones are refused (429) until the minute ends`,
        { address: key },
      );
    }
  }

  /** failed and refused attempts of all addresses in this minute */
  private countTotal(m: number): void {
    if (this.total.minute !== m) this.total = { minute: m, failures: 0 };
    this.total.failures++;
    if (this.total.failures === this.o.cfg.floodAlertPerMinute) {
      this.alert(
        'critical',
        `${this.total.failures} failed or refused authentications (bad token or cookie) within a minute, all addresses together`,
        { scope: 'all' },
      );
    }
  }

  /** a credential that just authenticated (or was just issued) */
  vouch(credential: string): void {
    if (this.vouched.size >= MAX_VOUCHED) {
      const now = this.o.clock.nowMs();
      for (const [k, until] of this.vouched) if (until <= now) this.vouched.delete(k);
      if (this.vouched.size >= MAX_VOUCHED) this.vouched.delete(this.vouched.keys().next().value!);
    }
    this.vouched.set(sha256(credential), this.o.clock.nowMs() + VOUCHED_MS);
  }

  private alert(severity: 'warning' | 'critical', message: string, targets: Record<string, string>): void {
    this.o.alerts
      .raise({ kind: 'auth.flood', severity, message, targets })
      .catch((e: unknown) => this.o.log.error({ err: e }, 'alert failed'));
  }

  /** writes one audit record per address for every minute that has ended (and, on close, the current one) */
  async flush(all = false): Promise<void> {
    const m = this.minute();
    this.flushedMinute = m;
    const done = [...this.buckets].filter(([, b]) => all || b.minute < m);
    for (const [k] of done) this.buckets.delete(k);
    for (const [address, b] of done) {
      if (b.failures === 0 && b.refused === 0) continue;
      await this.o.audit
        .recordNow({
          action: 'auth.refused',
          actor: 'anonymous',
          outcome: 'denied',
          reason: 'BAD_CREDENTIALS',
          targets: {
            address,
            minute: new Date(b.minute * MINUTE).toISOString(),
            failures: String(b.failures),
            refused: String(b.refused),
          },
          source: {
            ...(address !== 'many' ? { ip: address } : {}),
            ...(b.userAgent ? { userAgent: b.userAgent.slice(0, 200) } : {}),
          },
        })
        .catch((e: unknown) =>
          this.o.log.error({ err: e, event: 'audit.failed' }, 'could not record failed authentications'),
        );
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }
}
