import type { AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { sha256 } from './secrets.js';

export interface ThrottleConfig {
  freeFailures: number;
  accountFailuresPerHour: number;
  addressFailures: number;
  addressWindowSeconds: number;
  alertAfter: number;
  proofBits: number;
  maxProofBits: number;
  knownClientDays: number;
}

/** how the client is recognised for this account: a device cookie, an address, or not at all */
export type Known = 'device' | 'address' | null;

export interface Counts {
  /** failures counted so far, this attempt included */
  accountFailures: number;
  addressFailures: number;
  pairFailures: number;
}

export type Reservation =
  | (Counts & {
      ok: true;
      /** success: the attempt and the pair's history are given back */
      release(): Promise<void>;
      /** a server fault (HSM down, …): the attempt was no guess and is given back, nothing else */
      cancel(): Promise<void>;
      /**
       * the password was wrong: what was not counted before (a known client's account and address
       * counters) is counted now; returns the counts with it, or null when there was nothing to add
       */
      failed(): Promise<Counts | null>;
      /** only the pair was counted (a known client): `release` must be told (`light`) */
      light: boolean;
    })
  | (Counts & { ok: false; /** a proof of work of this many bits is needed first */ bits: number });

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** how long a proof demand is answered from memory, and how many are kept */
const DEMAND_MEMORY_MS = 1_000;
const MAX_DEMANDS = 20_000;
/** known clients whose last write this node keeps in mind */
const MAX_REMEMBERED = 20_000;

/**
 * Brute-force throttling without lockout (B1–B3), counters in the database (several nodes share
 * them). Nobody is ever refused with the right password: slowing down means asking for a proof of
 * work (SHA-256 with leading zero bits, single-use challenge bound to the account and address)
 * before the password is evaluated.
 *
 * - per (account, address): `freeFailures` free failures, then one more bit per failure;
 * - per account, all addresses: past `accountFailuresPerHour` the account is under attack and
 *   clients it does not know (address or device) pay `proofBits`, one more bit per doubling;
 * - per address (IPv4 /32, IPv6 /64): past `addressFailures` per window, the address pays the same
 *   way for every account it is not known for (one NAT address never locks its users out).
 * A device the user signed in from (cookie) pays nothing; a known address pays only for its own
 * failures on this account. At most `maxProofBits` are asked, so a real user gets in within a minute.
 *
 * Accounts are keyed by a hash of the normalised username whether or not it exists, so nothing
 * here reveals whether an account exists. Attempts are counted before the password is evaluated
 * and given back on success (or when a proof is asked instead): counters stay exact under
 * parallel bursts; updates are compare-and-set. An attempt refused for want of a proof writes
 * nothing (the proof challenges are in ./proof-challenges.ts).
 */
export class LoginThrottle {
  /** recent proof demands by (account, address), for clients without a device cookie: see `recentDemand` */
  private readonly demands = new Map<string, { bits: number; until: number; userId: string | undefined }>();
  /** known clients this node wrote lately (hash → when): see `remember` */
  private readonly remembered = new Map<string, number>();
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly cfg: ThrottleConfig,
  ) {}

  static accountKey(usernameKey: string): string {
    return `acct:${sha256(usernameKey)}`;
  }

  private static pairKey(accountKey: string, prefix: string): string {
    return `pair:${accountKey.slice(5)}:${prefix}`;
  }

  /** compare-and-set update of one counter; `decide` sees the current row (window already applied) */
  private async cas(
    key: string,
    windowMs: number,
    decide: (failures: number, last: number) => { take: boolean },
    db: AuthDb = this.db,
  ): Promise<{ taken: boolean; failures: number; last: number }> {
    for (let i = 0; i < 20; i++) {
      const now = this.clock.nowMs();
      const row = await db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
      const fresh = !row || Number(row.window_start) + windowMs <= now;
      const failures = fresh ? 0 : row.failures;
      const last = fresh ? 0 : Number(row.last_failure_at);
      const d = decide(failures, last);
      if (!d.take) return { taken: false, failures, last };
      if (!row) {
        const r = await db
          .insertInto('login_throttle')
          .values({ key, failures: 1, window_start: now, last_failure_at: now })
          .onConflict((oc) => oc.column('key').doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return { taken: true, failures: 1, last: now };
        continue;
      }
      const r = await db
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

  private async giveBack(key: string, db: AuthDb = this.db): Promise<void> {
    await db
      .updateTable('login_throttle')
      .set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('key', '=', key)
      .where('failures', '>', 0)
      .execute();
  }

  /** bits for `n` failures against a threshold: 0 below it, then `proofBits` and one more per doubling */
  private levelBits(n: number, threshold: number): number {
    if (n < threshold) return 0;
    return this.cfg.proofBits + Math.floor(Math.log2(n / threshold));
  }

  /** the proof of work asked before an attempt, from the failures counted before it */
  required(before: Counts, known: Known): number {
    if (known === 'device') return 0;
    const over = before.pairFailures - this.cfg.freeFailures;
    const pair = over < 0 ? 0 : this.cfg.proofBits + over;
    const wide =
      known === 'address'
        ? 0
        : Math.max(
            this.levelBits(before.accountFailures, this.cfg.accountFailuresPerHour),
            this.levelBits(before.addressFailures, this.cfg.addressFailures),
          );
    const bits = Math.max(pair, wide);
    return bits === 0 ? 0 : Math.min(this.cfg.maxProofBits, bits);
  }

  /**
   * The proof this (account, address) was asked for within the last second, if any (0: decide
   * afresh). A guesser who keeps sending without solving is answered from memory: no database
   * read or write per guess. Only for clients without a device cookie (a device is never asked)
   * and without a proof; all are forgotten whenever this node counts an attempt or a sign-in
   * succeeds. On a cluster, a demand can outlive the state it came from by a second at most
   * (friction, never a refusal).
   */
  recentDemand(accountKey: string, prefix: string): { bits: number; userId: string | undefined } | undefined {
    const d = this.demands.get(`${accountKey}|${prefix}`);
    if (!d) return undefined;
    if (d.until > this.clock.nowMs()) return d;
    this.demands.delete(`${accountKey}|${prefix}`);
    return undefined;
  }

  /** a proof demand made to a client without a device cookie (`recentDemand`) */
  noteDemand(accountKey: string, prefix: string, bits: number, userId: string | undefined): void {
    if (this.demands.size >= MAX_DEMANDS) this.demands.clear();
    this.demands.set(`${accountKey}|${prefix}`, { bits, until: this.clock.nowMs() + DEMAND_MEMORY_MS, userId });
  }

  /** the failures counted so far under these keys (windows applied), in one read */
  private async peek(keys: readonly [string, number][]): Promise<number[]> {
    const rows = await this.db
      .selectFrom('login_throttle')
      .selectAll()
      .where(
        'key',
        'in',
        keys.map(([k]) => k),
      )
      .execute();
    const now = this.clock.nowMs();
    return keys.map(([k, windowMs]) => {
      const row = rows.find((r) => r.key === k);
      return !row || Number(row.window_start) + windowMs <= now ? 0 : row.failures;
    });
  }

  /**
   * Counts one attempt (account, pair, address) and says whether it may be evaluated with the
   * proof the client brought (`provenBits`, 0 without one). The counters are read first: an attempt
   * that needs more proof than it brought is refused without any write (a guesser who does not
   * solve proofs costs reads only). Otherwise it is counted (compare-and-set), checked again
   * against the counts that include it (parallel bursts), and given back when refused after all.
   */
  async reserve(accountKey: string, prefix: string, known: Known, provenBits: number): Promise<Reservation> {
    const addrKey = `addr:${prefix}`;
    const pairKey = LoginThrottle.pairKey(accountKey, prefix);
    const [addr0, pair0, acct0] = await this.peek([
      [addrKey, this.cfg.addressWindowSeconds * 1000],
      [pairKey, DAY],
      [accountKey, HOUR],
    ]);
    const before: Counts = { accountFailures: acct0!, addressFailures: addr0!, pairFailures: pair0! };
    const early = this.required(before, known);
    if (early > provenBits)
      return {
        ok: false,
        bits: early,
        accountFailures: acct0! + 1,
        addressFailures: addr0! + 1,
        pairFailures: pair0! + 1,
      };
    this.demands.clear(); // counts change: every remembered demand is decided afresh
    const always = () => ({ take: true });
    if (known !== null) return this.reserveKnown(accountKey, prefix, known, provenBits, before);
    // one transaction: one commit (one fsync) for the three counters, not three
    const [addr, pair, acct] = await this.db
      .transaction()
      .execute(async (trx) => [
        await this.cas(addrKey, this.cfg.addressWindowSeconds * 1000, always, trx),
        await this.cas(pairKey, DAY, always, trx),
        await this.cas(accountKey, HOUR, always, trx),
      ]);
    const counts: Counts = {
      accountFailures: acct!.failures,
      addressFailures: addr!.failures,
      pairFailures: pair!.failures,
    };
    const bits = this.required(
      { accountFailures: acct!.failures - 1, addressFailures: addr!.failures - 1, pairFailures: pair!.failures - 1 },
      known,
    );
    if (bits > provenBits || !addr!.taken || !pair!.taken || !acct!.taken) {
      // only what was counted is given back (a counter too contended to update counts as a demand)
      const counted = (
        [
          [addr!, addrKey],
          [pair!, pairKey],
          [acct!, accountKey],
        ] as const
      )
        .filter(([c]) => c.taken)
        .map(([, k]) => k);
      await this.db.transaction().execute(async (trx) => {
        for (const k of counted) await this.giveBack(k, trx);
      });
      return { ok: false, bits: Math.max(bits, this.cfg.proofBits), ...counts };
    }
    return {
      ok: true,
      light: false,
      ...counts,
      release: () => this.release(accountKey, prefix),
      cancel: async () => {
        this.demands.clear();
        await this.db.transaction().execute(async (trx) => {
          for (const k of [addrKey, pairKey, accountKey]) await this.giveBack(k, trx);
        });
      },
      failed: () => Promise.resolve(null),
    };
  }

  /**
   * A client the user is known for (device or address): only the (account, address) pair decides
   * its proof (`required`), so only the pair is counted before the password is evaluated (exact
   * under parallel bursts from that client); the account's and the address's counters, which
   * decide for other clients, are counted only when the password was wrong. The user's own
   * sign-in thus writes one counter and clears it, instead of counting and giving back three.
   */
  private async reserveKnown(
    accountKey: string,
    prefix: string,
    known: Exclude<Known, null>,
    provenBits: number,
    before: Counts,
  ): Promise<Reservation> {
    const pairKey = LoginThrottle.pairKey(accountKey, prefix);
    const addrKey = `addr:${prefix}`;
    const pair = await this.cas(pairKey, DAY, () => ({ take: true }));
    const counts: Counts = { ...before, pairFailures: pair.failures };
    const bits = this.required({ ...before, pairFailures: pair.failures - 1 }, known);
    if (bits > provenBits || !pair.taken) {
      if (pair.taken) await this.giveBack(pairKey);
      return { ok: false, bits: Math.max(bits, this.cfg.proofBits), ...counts };
    }
    return {
      ok: true,
      light: true,
      ...counts,
      release: () => this.release(accountKey, prefix, true),
      cancel: async () => {
        this.demands.clear();
        await this.giveBack(pairKey);
      },
      failed: async () => {
        this.demands.clear();
        const always = () => ({ take: true });
        const [addr, acct] = await this.db
          .transaction()
          .execute(async (trx) => [
            await this.cas(addrKey, this.cfg.addressWindowSeconds * 1000, always, trx),
            await this.cas(accountKey, HOUR, always, trx),
          ]);
        return { accountFailures: acct!.failures, addressFailures: addr!.failures, pairFailures: pair.failures };
      },
    };
  }

  /**
   * A successful sign-in gives its attempt back and clears the pair's history (`light`: a known
   * client's reservation, which counted the pair only), in one transaction.
   */
  async release(accountKey: string, prefix: string, light = false): Promise<void> {
    this.demands.clear();
    const pairKey = LoginThrottle.pairKey(accountKey, prefix);
    if (light) {
      await this.db.deleteFrom('login_throttle').where('key', '=', pairKey).execute();
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      await this.giveBack(`addr:${prefix}`, trx);
      await trx.deleteFrom('login_throttle').where('key', '=', pairKey).execute();
      await this.giveBack(accountKey, trx);
    });
  }

  private static clientHash(kind: 'address' | 'device', userId: string, value: string): string {
    return sha256(`${kind}:${userId}:${value}`);
  }

  /** whether this user completed a sign-in from this device (cookie secret) or address recently */
  async known(userId: string, prefix: string, device: string | undefined): Promise<Known> {
    const hashes = [
      LoginThrottle.clientHash('address', userId, prefix),
      ...(device ? [LoginThrottle.clientHash('device', userId, device)] : []),
    ];
    const rows = await this.db
      .selectFrom('auth_known_clients')
      .select('kind')
      .where('client_hash', 'in', hashes)
      .where('user_id', '=', userId)
      .where('last_seen_at', '>', this.clock.nowMs() - this.cfg.knownClientDays * DAY)
      .execute();
    if (rows.some((r) => r.kind === 'device')) return 'device';
    return rows.length ? 'address' : null;
  }

  /**
   * After a complete sign-in: this address (and device, when given) is known for the user. A client
   * this node remembered within the last hour is not written again (its `last_seen_at` lags by an
   * hour at most, against `knownClientDays`): a user signing in again costs no write for it.
   */
  async remember(userId: string, prefix: string, device: string | undefined): Promise<void> {
    const now = this.clock.nowMs();
    const rows = [
      { kind: 'address', hash: LoginThrottle.clientHash('address', userId, prefix) },
      ...(device ? [{ kind: 'device', hash: LoginThrottle.clientHash('device', userId, device) }] : []),
    ].filter((r) => {
      const at = this.remembered.get(r.hash);
      return at === undefined || now - at >= HOUR || at > now;
    });
    if (this.remembered.size + rows.length > MAX_REMEMBERED) this.remembered.clear();
    for (const r of rows) {
      await this.db
        .insertInto('auth_known_clients')
        .values({ client_hash: r.hash, user_id: userId, kind: r.kind, first_seen_at: now, last_seen_at: now })
        .onConflict((oc) => oc.column('client_hash').doUpdateSet({ last_seen_at: now }))
        .execute();
      this.remembered.set(r.hash, now);
    }
  }

  /** counts one request against a per-key budget (reset requests, R4; codes, M5); false when over `max` */
  async take(key: string, max: number, windowMs: number): Promise<boolean> {
    return (await this.cas(key, windowMs, (f) => ({ take: f < max }))).taken;
  }

  /** seconds until the window of `key` ends (for Retry-After), at least 1 */
  async windowLeftSeconds(key: string, windowMs: number): Promise<number> {
    const row = await this.db
      .selectFrom('login_throttle')
      .select('window_start')
      .where('key', '=', key)
      .executeTakeFirst();
    return row ? Math.max(1, Math.ceil((Number(row.window_start) + windowMs - this.clock.nowMs()) / 1000)) : 1;
  }

  /** counts one event against `key` in its window; returns the count, this one included */
  async hit(key: string, windowMs: number): Promise<number> {
    return (await this.cas(key, windowMs, () => ({ take: true }))).failures;
  }

  /** seconds left while `key` (set by `hit`) is inside its window, 0 once it is over */
  async activeFor(key: string, windowMs: number): Promise<number> {
    const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    if (!row || row.failures <= 0) return 0;
    const left = Number(row.window_start) + windowMs - this.clock.nowMs();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  async clear(key: string): Promise<void> {
    await this.db.deleteFrom('login_throttle').where('key', '=', key).execute();
  }

  /** gives back one request taken with `take` */
  async untake(key: string): Promise<void> {
    await this.giveBack(key);
  }
}
