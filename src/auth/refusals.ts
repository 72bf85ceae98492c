import type { Auditor, AuditSource } from '../audit/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';

interface Bucket {
  minute: number;
  refused: number;
  bits: number;
  users: Set<string>;
  userAgent?: string | undefined;
}

const MINUTE = 60_000;
/** addresses tracked at once; past it, new addresses share one bucket (`many`) */
const MAX_ADDRESSES = 50_000;
/** user ids named in one record at most */
const MAX_USERS = 20;

/**
 * Sign-ins refused with a proof-of-work demand, recorded in aggregate (docs/brute-force.md): one
 * `auth.login` / `PROOF_REQUIRED` audit record per address and minute, with the count, the
 * highest bits asked and the accounts concerned, instead of one record per guess. A refusal
 * changes nothing, so it does not wait for its record; a crash loses at most the current minute's
 * counts. Each node keeps its own tallies.
 */
export class RefusalTally {
  private readonly buckets = new Map<string, Bucket>();
  private flushedMinute = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: { clock: Clock; audit: Auditor; log: Logger }) {
    this.timer = setInterval(() => void this.flush(), 5_000);
    this.timer.unref();
  }

  private minute(): number {
    return Math.floor(this.o.clock.nowMs() / MINUTE);
  }

  /** one sign-in refused from this address (`userId` when the name is an account) */
  refused(prefix: string, bits: number, userId: string | undefined, source: AuditSource): void {
    const m = this.minute();
    if (m !== this.flushedMinute) void this.flush();
    const key = this.buckets.has(prefix) || this.buckets.size < MAX_ADDRESSES ? prefix : 'many';
    let b = this.buckets.get(key);
    if (!b || b.minute !== m) {
      b = { minute: m, refused: 0, bits: 0, users: new Set() };
      this.buckets.set(key, b);
    }
    b.refused++;
    b.bits = Math.max(b.bits, bits);
    if (userId && b.users.size < MAX_USERS) b.users.add(userId);
    b.userAgent ??= source.userAgent;
  }

  /** writes one record per address for every minute that has ended (and, with `all`, the current one) */
  async flush(all = false): Promise<void> {
    const m = this.minute();
    this.flushedMinute = m;
    const done = [...this.buckets].filter(([, b]) => all || b.minute < m);
    for (const [k] of done) this.buckets.delete(k);
    for (const [address, b] of done) {
      const users = [...b.users].sort().join(',');
      await this.o.audit
        .recordNow({
          action: 'auth.login',
          actor: 'anonymous',
          outcome: 'denied',
          reason: 'PROOF_REQUIRED',
          targets: {
            address,
            minute: new Date(b.minute * MINUTE).toISOString(),
            refused: String(b.refused),
            bits: String(b.bits),
            ...(users ? { users } : {}),
          },
          source: {
            ...(address !== 'many' ? { ip: address } : {}),
            ...(b.userAgent ? { userAgent: b.userAgent.slice(0, 200) } : {}),
          },
        })
        .catch((e: unknown) =>
          this.o.log.error({ err: e, event: 'audit.failed' }, 'could not record refused sign-ins'),
        );
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }
}
