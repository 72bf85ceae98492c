import os from 'node:os';
import crypto from 'node:crypto';
import { PostgresAdapter, sql } from 'kysely';
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

/** advisory locks of Coffre's leases: (this class, hashtext(name)); 'Cofr' */
const LOCK_CLASS = 0x436f6672;

/**
 * PostgreSQL session-level advisory locks for the leases of one process, on one connection taken
 * from the pool while at least one is held (and given back when none is, so closing the pool never
 * waits on it). A process that dies loses its connection, and PostgreSQL frees its locks at once:
 * the lease can be taken over without waiting for its expiry.
 */
class AdvisoryLocks {
  private session: Promise<{ c: JobsDb; release(): void }> | undefined;
  private readonly held = new Set<string>();
  private busy = 0;

  constructor(private readonly db: JobsDb) {}

  private open(): Promise<{ c: JobsDb; release(): void }> {
    return (this.session ??= new Promise((resolve, reject) => {
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      this.db
        .connection()
        .execute(async (c) => {
          resolve({ c, release });
          await done;
        })
        .catch((e: unknown) => {
          this.session = undefined;
          this.held.clear(); // a lost connection lost its locks
          reject(e as Error);
        });
    }));
  }

  private async use<T>(fn: (c: JobsDb) => Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await fn((await this.open()).c);
    } finally {
      this.busy--;
      if (!this.busy && !this.held.size) {
        const s = this.session;
        this.session = undefined;
        void s?.then(
          (x) => x.release(),
          () => undefined,
        );
      }
    }
  }

  /** false when another session holds it, or this process already does (through another Leases) */
  async take(name: string): Promise<boolean> {
    if (this.held.has(name)) return false;
    return this.use(async (c) => {
      const r = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${name})) AS ok`.execute(
        c,
      );
      if (r.rows[0]?.ok !== true) return false;
      this.held.add(name);
      return true;
    });
  }

  async release(name: string): Promise<void> {
    if (!this.held.has(name)) return;
    await this.use(async (c) => {
      this.held.delete(name);
      await sql`SELECT pg_advisory_unlock(${LOCK_CLASS}, hashtext(${name}))`.execute(c);
    });
  }

  /** of `names`, those whose lock some session holds */
  async locked(names: string[]): Promise<Set<string>> {
    if (!names.length) return new Set();
    const r = await sql<{ name: string }>`
      SELECT n.name FROM unnest(${names}::text[]) AS n(name)
      WHERE EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted AND p.objsubid = 2
        AND p.classid::text::bigint = ${LOCK_CLASS} AND p.objid::text::bigint = (hashtext(n.name)::bigint & 4294967295))`.execute(
      this.db,
    );
    return new Set(r.rows.map((x) => x.name));
  }
}

const advisory = new WeakMap<JobsDb, AdvisoryLocks>();
function advisoryLocks(db: JobsDb): AdvisoryLocks | undefined {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return undefined;
  let a = advisory.get(db);
  if (!a) advisory.set(db, (a = new AdvisoryLocks(db)));
  return a;
}

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
  /** on PostgreSQL */
  private readonly locks: AdvisoryLocks | undefined;

  constructor(
    private readonly db: JobsDb,
    private readonly clock: Clock,
    readonly holder: string,
    private readonly ttlMs: number,
  ) {
    this.locks = advisoryLocks(db);
  }

  /** PostgreSQL: a holder's death frees its leases at once (several nodes may share them) */
  get advisory(): boolean {
    return this.locks !== undefined;
  }

  async acquire(name: string): Promise<boolean> {
    return (await this.take(name)).ok;
  }

  /** Takes the lease if it is free, expired, or held by a dead process of this host; otherwise says who holds it. */
  async take(name: string): Promise<Acquired> {
    if (this.mine.has(name)) return { ok: false, holder: await this.current(name) };
    this.mine.add(name);
    try {
      const got = this.locks ? await this.takeLocked(name, this.locks) : await this.takeFromDb(name);
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

  /**
   * PostgreSQL: the advisory lock decides. Got it: whoever holds the row is gone (its session
   * ended) or the row is stale, and the row is taken whatever its expiry; not got: a live holder.
   */
  private async takeLocked(name: string, locks: AdvisoryLocks): Promise<Acquired> {
    if (!(await locks.take(name))) return { ok: false, holder: await this.current(name) };
    try {
      const before = await this.current(name);
      const now = this.clock.nowMs();
      const values = { holder: this.holder, acquired_at: now, expires_at: now + this.ttlMs };
      await this.db
        .insertInto('job_leases')
        .values({ name, ...values })
        .onConflict((oc) => oc.column('name').doUpdateSet(values))
        .execute();
      return { ok: true, tookOver: before && before.holder !== this.holder && before.expiresAt >= now ? before : null };
    } catch (e) {
      await locks.release(name).catch(() => undefined);
      throw e;
    }
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
    if (!ok) {
      this.mine.delete(name); // lost: it may be taken again
      await this.locks?.release(name);
    }
    return ok;
  }

  async release(name: string): Promise<void> {
    const had = this.mine.delete(name);
    try {
      await this.db.deleteFrom('job_leases').where('name', '=', name).where('holder', '=', this.holder).execute();
    } finally {
      if (had) await this.locks?.release(name);
    }
  }

  /** names of leases currently held by a live holder (not expired, not a dead process of this host) */
  async live(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('job_leases')
      .select(['name', 'holder'])
      .where('expires_at', '>=', this.clock.nowMs())
      .execute();
    if (this.locks) {
      // PostgreSQL: live while its advisory lock is held, expired or not
      const all = await this.db.selectFrom('job_leases').select('name').execute();
      return [...(await this.locks.locked(all.map((r) => r.name)))];
    }
    return rows.filter((r) => !goneHere(parseHolder(r.holder))).map((r) => r.name);
  }
}
