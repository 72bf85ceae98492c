import type { Db } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { sha256 } from './secrets.js';

export interface ThrottleConfig {
  freeFailures: number;
  maxBackoffSeconds: number;
  accountFailuresPerHour: number;
  addressFailures: number;
  addressWindowSeconds: number;
  alertAfter: number;
}

export type Reservation =
  | { ok: true; accountFailures: number; addressFailures: number; settle(success: boolean): Promise<void> }
  | { ok: false; kind: 'address'; retryAfterSeconds: number; addressFailures: number }
  | { ok: false; kind: 'account' | 'backoff'; addressFailures: number; accountFailures: number };

const HOUR = 3_600_000;

/**
 * Brute-force throttling (B1–B4), counters in the database (several nodes share them).
 *
 * - per source address (IPv4 /32, IPv6 /64): at most `addressFailures` failed attempts per
 *   window, whatever the usernames; beyond, 429 with Retry-After (B2);
 * - per (account, address) pair: exponential back-off after `freeFailures` (B1); an attacker at
 *   address A never slows the real user at address B (B3);
 * - per account, all addresses: at most `accountFailuresPerHour` evaluated failures (B1).
 *
 * Accounts are keyed by a hash of the normalised username whether or not it exists, so throttling
 * reveals nothing (B3). Attempts are *reserved* (counted) before the password is evaluated and
 * given back on success: counters stay right under parallel bursts (B4), updates are
 * compare-and-set.
 */
export class LoginThrottle {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly cfg: ThrottleConfig,
  ) {}

  static accountKey(usernameKey: string): string {
    return `acct:${sha256(usernameKey)}`;
  }

  /** compare-and-set update of one counter; `decide` sees the current row (window already applied) */
  private async cas(
    key: string,
    windowMs: number,
    decide: (failures: number, last: number) => { take: boolean },
  ): Promise<{ taken: boolean; failures: number; last: number }> {
    for (let i = 0; i < 20; i++) {
      const now = this.clock.nowMs();
      const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
      const fresh = !row || Number(row.window_start) + windowMs <= now;
      const failures = fresh ? 0 : row.failures;
      const last = fresh ? 0 : Number(row.last_failure_at);
      const d = decide(failures, last);
      if (!d.take) return { taken: false, failures, last };
      if (!row) {
        const r = await this.db
          .insertInto('login_throttle')
          .values({ key, failures: 1, window_start: now, last_failure_at: now })
          .onConflict((oc) => oc.column('key').doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return { taken: true, failures: 1, last: now };
        continue;
      }
      const r = await this.db
        .updateTable('login_throttle')
        .set({ failures: failures + 1, window_start: fresh ? now : Number(row.window_start), last_failure_at: now })
        .where('key', '=', key)
        .where('failures', '=', row.failures)
        .where('last_failure_at', '=', row.last_failure_at)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1) return { taken: true, failures: failures + 1, last: now };
    }
    return { taken: false, failures: Number.MAX_SAFE_INTEGER, last: this.clock.nowMs() };
  }

  private async giveBack(key: string): Promise<void> {
    await this.db
      .updateTable('login_throttle')
      .set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('key', '=', key)
      .where('failures', '>', 0)
      .execute();
  }

  /** seconds an address must wait, 0 when it may try (read-only; used by other public forms too) */
  async addressRetryAfter(prefix: string): Promise<number> {
    const now = this.clock.nowMs();
    const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', `addr:${prefix}`).executeTakeFirst();
    const win = this.cfg.addressWindowSeconds * 1000;
    if (!row || Number(row.window_start) + win <= now || row.failures < this.cfg.addressFailures) return 0;
    return Math.max(1, Math.ceil((Number(row.window_start) + win - now) / 1000));
  }

  backoffMs(failures: number): number {
    const over = failures - this.cfg.freeFailures;
    if (over < 0) return 0;
    return Math.min(this.cfg.maxBackoffSeconds * 1000, 1000 * 2 ** over);
  }

  async reserve(accountKey: string, prefix: string): Promise<Reservation> {
    const addrKey = `addr:${prefix}`;
    const pairKey = `pair:${accountKey.slice(5)}:${prefix}`;
    const addrWin = this.cfg.addressWindowSeconds * 1000;
    const addr = await this.cas(addrKey, addrWin, (f) => ({ take: f < this.cfg.addressFailures }));
    if (!addr.taken) {
      const row = await this.db.selectFrom('login_throttle').select('window_start').where('key', '=', addrKey).executeTakeFirst();
      const retry = row ? Math.max(1, Math.ceil((Number(row.window_start) + addrWin - this.clock.nowMs()) / 1000)) : 1;
      return { ok: false, kind: 'address', retryAfterSeconds: retry, addressFailures: addr.failures };
    }
    const now = this.clock.nowMs();
    const pair = await this.cas(pairKey, 24 * HOUR, (f, last) => ({ take: f < this.cfg.freeFailures || now >= last + this.backoffMs(f) }));
    if (!pair.taken) return { ok: false, kind: 'backoff', addressFailures: addr.failures, accountFailures: pair.failures };
    const acct = await this.cas(accountKey, HOUR, (f) => ({ take: f < this.cfg.accountFailuresPerHour }));
    if (!acct.taken) return { ok: false, kind: 'account', addressFailures: addr.failures, accountFailures: acct.failures };
    return {
      ok: true,
      accountFailures: acct.failures,
      addressFailures: addr.failures,
      settle: async (success) => {
        if (!success) return;
        await this.giveBack(addrKey);
        await this.giveBack(accountKey);
        await this.db.deleteFrom('login_throttle').where('key', '=', pairKey).execute();
      },
    };
  }

  /** counts one request against a per-key budget (reset requests, R4); false when over `max` */
  async take(key: string, max: number, windowMs: number): Promise<boolean> {
    return (await this.cas(key, windowMs, (f) => ({ take: f < max }))).taken;
  }
}
