import os from 'node:os';
import crypto from 'node:crypto';
import type { Db } from '../db/index.js';
import type { Clock } from '../shared/clock.js';

/** Identifies this process as a lease holder. */
export const makeHolderId = () => `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;

/**
 * Single-flight leases in the database. Acquisition is one atomic upsert that only takes over a
 * lease that expired or that we already hold, so two processes (CLI and scheduler, or two nodes)
 * never both win.
 */
export class Leases {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(name: string): Promise<boolean> {
    const now = this.clock.nowMs();
    await this.db
      .insertInto('job_leases')
      .values({ name, holder: this.holder, acquired_at: now, expires_at: now + this.ttlMs })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({ holder: this.holder, acquired_at: now, expires_at: now + this.ttlMs }).where((eb) =>
          eb.or([eb('job_leases.expires_at', '<', now), eb('job_leases.holder', '=', this.holder)]),
        ),
      )
      .execute();
    const row = await this.db.selectFrom('job_leases').select('holder').where('name', '=', name).executeTakeFirst();
    return row?.holder === this.holder;
  }

  async renew(name: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const r = await this.db
      .updateTable('job_leases')
      .set({ expires_at: now + this.ttlMs })
      .where('name', '=', name)
      .where('holder', '=', this.holder)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async release(name: string): Promise<void> {
    await this.db.deleteFrom('job_leases').where('name', '=', name).where('holder', '=', this.holder).execute();
  }

  /** names of leases currently held by anyone and not expired */
  async live(): Promise<string[]> {
    const rows = await this.db.selectFrom('job_leases').select('name').where('expires_at', '>=', this.clock.nowMs()).execute();
    return rows.map((r) => r.name);
  }
}
