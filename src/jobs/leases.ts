import os from 'node:os';
import crypto from 'node:crypto';
import type { JobsDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';

/** Identifies this process as a lease holder: `<host>:<pid>:<random>`. */
export const makeHolderId = () => `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;

/** Who holds a lease, as far as its holder id tells. */
export interface LeaseHolder {
  holder: string;
  /** host and pid of the holding process (null when the holder id is not `<host>:<pid>:<random>`) */
  host: string | null;
  pid: number | null;
  acquiredAt: number;
  expiresAt: number;
}

export type Acquired = { ok: true; tookOver: LeaseHolder | null } | { ok: false; holder: LeaseHolder | null };

export function parseHolder(holder: string): { host: string | null; pid: number | null } {
  const m = /^(.+):(\d+):[0-9a-f]+$/.exec(holder);
  return m ? { host: m[1]!, pid: Number(m[2]) } : { host: null, pid: null };
}

/** A process of this host that no longer exists (signal 0 answers ESRCH). */
function goneHere(h: { host: string | null; pid: number | null }): boolean {
  if (h.host !== os.hostname() || h.pid === null || h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** `process 1234 on host dr1` */
export const describeHolder = (h: LeaseHolder) =>
  h.pid !== null ? `process ${h.pid} on host ${h.host}` : `holder ${h.holder}`;

/**
 * Single-flight leases in the database. Acquisition is one atomic upsert that only takes over a
 * lease that expired, so two processes (CLI and scheduler, or two nodes), and two callers in one
 * process, never both win: a lease is not re-entrant, not even for its own holder.
 *
 * A holder renews its lease while it works (the heartbeat: `expires_at`); a lease not renewed
 * within the TTL is free. A lease whose holder is a process of this host that no longer exists
 * (killed, crashed) is taken over at once, without waiting for the TTL: hosts are told apart by
 * their host name, so nodes sharing a database need distinct host names.
 */
export class Leases {
  /** names this instance holds or is taking (checked before any await: two callers here never both win) */
  private readonly mine = new Set<string>();

  constructor(
    private readonly db: JobsDb,
    private readonly clock: Clock,
    readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(name: string): Promise<boolean> {
    return (await this.take(name)).ok;
  }

  /** Takes the lease if it is free, expired, or held by a dead process of this host; otherwise says who holds it. */
  async take(name: string): Promise<Acquired> {
    if (this.mine.has(name)) return { ok: false, holder: await this.current(name) };
    this.mine.add(name);
    try {
      const got = await this.takeFromDb(name);
      if (!got.ok) this.mine.delete(name);
      return got;
    } catch (e) {
      this.mine.delete(name);
      throw e;
    }
  }

  private async takeFromDb(name: string): Promise<Acquired> {
    const now = this.clock.nowMs();
    const values = { holder: this.holder, acquired_at: now, expires_at: now + this.ttlMs };
    await this.db
      .insertInto('job_leases')
      .values({ name, ...values })
      .onConflict((oc) => oc.column('name').doUpdateSet(values).where('job_leases.expires_at', '<', now))
      .execute();
    const row = await this.current(name);
    if (row?.holder === this.holder) return { ok: true, tookOver: null };
    if (!row) return { ok: false, holder: null };
    if (!goneHere(row)) return { ok: false, holder: row };
    // its holder is gone: take it over, unless someone else did in the meantime
    const r = await this.db
      .updateTable('job_leases')
      .set(values)
      .where('name', '=', name)
      .where('holder', '=', row.holder)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1
      ? { ok: true, tookOver: row }
      : { ok: false, holder: await this.current(name) };
  }

  /** the lease's holder, or null when nobody holds it */
  async current(name: string): Promise<LeaseHolder | null> {
    const row = await this.db.selectFrom('job_leases').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) return null;
    return {
      holder: row.holder,
      ...parseHolder(row.holder),
      acquiredAt: Number(row.acquired_at),
      expiresAt: Number(row.expires_at),
    };
  }

  async renew(name: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const r = await this.db
      .updateTable('job_leases')
      .set({ expires_at: now + this.ttlMs })
      .where('name', '=', name)
      .where('holder', '=', this.holder)
      .executeTakeFirst();
    const ok = Number(r.numUpdatedRows) === 1;
    if (!ok) this.mine.delete(name); // lost: it may be taken again
    return ok;
  }

  async release(name: string): Promise<void> {
    this.mine.delete(name);
    await this.db.deleteFrom('job_leases').where('name', '=', name).where('holder', '=', this.holder).execute();
  }

  /** names of leases currently held by a live holder (not expired, not a dead process of this host) */
  async live(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('job_leases')
      .select(['name', 'holder'])
      .where('expires_at', '>=', this.clock.nowMs())
      .execute();
    return rows.filter((r) => !goneHere(parseHolder(r.holder))).map((r) => r.name);
  }
}
