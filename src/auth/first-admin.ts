import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { openKeys } from '../keys/index.js';
import { DbAuditor } from '../audit/index.js';
import { AppError } from '../shared/errors.js';
import { normaliseEmail, normaliseUsername } from './username.js';
import { wireIdentity } from './wire.js';

/** Checks `--admin USER --admin-email EMAIL` before anything is created (exit 2 on bad input). */
export function checkFirstAdminArgs(admin: string | undefined, email: string | undefined): void {
  if (admin === undefined && email === undefined) return;
  if (!admin || !email) throw new AppError('USAGE', '--admin and --admin-email go together', { exitCode: 2 });
  normaliseUsername(admin);
  normaliseEmail(email);
}

/**
 * `coffre init --admin`: the first administrator, created invited (no password: a fresh install
 * has no account with a known password, P1), and their one-time enrolment link, built from the
 * configured public URL.
 */
export async function createFirstAdmin(o: {
  config: Config;
  /** The whole database: this composes keys, audit and identity, as main.ts does. */
  db: Db;
  clock: Clock;
  log: Logger;
  actor: string;
  username: string;
  email: string;
}): Promise<{ enrolUrl: string; userId: string }> {
  const keys = await openKeys({ config: o.config.keys, db: o.db, clock: o.clock, log: o.log });
  const audit = new DbAuditor({ db: o.db, clock: o.clock, log: o.log });
  try {
    const publicUrl = o.config.http.publicUrl ?? `https://127.0.0.1:${o.config.http.port}`;
    const id = wireIdentity({
      db: o.db,
      clock: o.clock,
      log: o.log,
      fields: keys.fields,
      keys: keys.provider,
      audit,
      auth: o.config.auth,
      mail: {},
      publicUrl,
    });
    const r = await id.accounts.invite({ username: o.username, email: o.email, role: 'admin' }, o.actor, {});
    return { enrolUrl: r.enrolUrl, userId: r.user.id };
  } finally {
    await audit.close();
    await keys.close();
  }
}
