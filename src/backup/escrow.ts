import { isAppError } from '../shared/errors.js';
import { listEscrow as listEscrowRows } from './catalogue.js';
import type { BackupCore } from './core.js';
import { backupErrors, BackupError } from './errors.js';

/** The customer's offline escrow OpenPGP keys: every future backup's session key is also encrypted to them. */

/**
 * Registers an escrow key (CLI `backup escrow add`, API `POST /backup/escrow`). Refused, with
 * nothing stored and the refusal audited (fingerprint only, never the key text): a key GnuPG 2.2
 * could not read (ESCROW_KEY_REFUSED, 400) or one already registered (ESCROW_KEY_EXISTS, 409).
 */
export async function addEscrow(c: BackupCore, keyText: string | Uint8Array, actor: string) {
  const { checkEscrowKey } = await import('./pgp/openpgp.js'); // OpenPGP.js loads only when escrow keys are in use
  let info: Awaited<ReturnType<typeof checkEscrowKey>>;
  try {
    info = await checkEscrowKey(keyText, new Date(c.d.clock.nowMs()));
  } catch (e) {
    await c.d.audit.recordNow({
      action: 'backup.escrow.add',
      actor,
      outcome: 'failure',
      reason: isAppError(e) ? e.code : 'ESCROW_KEY_REFUSED',
    });
    throw e;
  }
  const duplicate = () => backupErrors.escrowExists(info.fingerprint);
  try {
    await c.db.transaction().execute(async (trx) => {
      const exists = await trx
        .selectFrom('backup_escrow_keys')
        .select('fingerprint')
        .where('fingerprint', '=', info.fingerprint)
        .executeTakeFirst();
      if (exists) throw duplicate();
      await c.d.audit.record(trx, {
        action: 'backup.escrow.add',
        actor,
        outcome: 'success',
        targets: { escrow: info.fingerprint },
      });
      await trx
        .insertInto('backup_escrow_keys')
        .values({
          fingerprint: info.fingerprint,
          armored: info.armored,
          user_ids: JSON.stringify(info.userIds),
          algorithm: info.algorithm,
          expires_at: info.expiresAt,
          created_at: c.d.clock.nowMs(),
          created_by: actor,
        })
        .execute();
    });
  } catch (e) {
    // a concurrent add of the same key loses on the primary key: the same answer as the check
    const err = isAppError(e) ? e : /UNIQUE constraint/i.test((e as Error)?.message ?? '') ? duplicate() : e;
    if (isAppError(err) && err.code === 'ESCROW_KEY_EXISTS')
      await c.d.audit.recordNow({
        action: 'backup.escrow.add',
        actor,
        outcome: 'failure',
        reason: err.code,
        targets: { escrow: info.fingerprint },
      });
    throw err;
  }
  const { armored: _a, ...rest } = info;
  return rest;
}

export async function listEscrow(c: BackupCore) {
  return (await listEscrowRows(c.db)).map((r) => ({
    fingerprint: r.fingerprint,
    userIds: JSON.parse(r.user_ids) as string[],
    algorithm: r.algorithm,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    createdAt: Number(r.created_at),
    createdBy: r.created_by,
  }));
}

/** The escrow keys a backup taken at `now` is encrypted to: those not past their expiry. */
export async function activeEscrow(c: BackupCore, now: number) {
  return (await listEscrowRows(c.db)).filter((r) => r.expires_at === null || Number(r.expires_at) > now);
}

const escrowNotFound = (fingerprint: string) =>
  new BackupError('ESCROW_KEY_NOT_FOUND', `no escrow key ${fingerprint}`, {
    httpStatus: 404,
    exitCode: 2,
    hint: 'see `coffre backup escrow list`',
  });

export async function escrowRow(c: BackupCore, fingerprint: string) {
  const fpr = fingerprint.toUpperCase().replace(/\s+/g, '');
  const row = await c.db
    .selectFrom('backup_escrow_keys')
    .select(['fingerprint', 'expires_at'])
    .where('fingerprint', '=', fpr)
    .executeTakeFirst();
  if (!row) throw escrowNotFound(fpr);
  return row;
}

/**
 * Removes an escrow key: no later backup is encrypted to it (audited). Backups already encrypted
 * to it stay readable by its holder, whatever Coffre destroys: only destroying the private key
 * ends that (docs/disaster-recovery.md "Escrow keys").
 */
export async function removeEscrow(
  c: BackupCore,
  fingerprint: string,
  actor: string,
): Promise<{ fingerprint: string }> {
  const row = await escrowRow(c, fingerprint);
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: 'backup.escrow.remove',
      actor,
      outcome: 'success',
      targets: { escrow: row.fingerprint },
    });
    await trx.deleteFrom('backup_escrow_keys').where('fingerprint', '=', row.fingerprint).execute();
  });
  return { fingerprint: row.fingerprint };
}

/**
 * Sets when Coffre stops encrypting backups to an escrow key (audited). An expiry can only be
 * brought forward (never past the key's own OpenPGP expiry, never later than one already set):
 * widening what an escrow key opens takes adding a key, not editing one.
 */
export async function expireEscrow(
  c: BackupCore,
  fingerprint: string,
  at: number,
  actor: string,
): Promise<{ fingerprint: string; expiresAt: number }> {
  const row = await checkEscrowExpiry(c, fingerprint, at, actor);
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: 'backup.escrow.expire',
      actor,
      outcome: 'success',
      targets: { escrow: row.fingerprint },
    });
    await trx
      .updateTable('backup_escrow_keys')
      .set({ expires_at: at })
      .where('fingerprint', '=', row.fingerprint)
      .execute();
  });
  return { fingerprint: row.fingerprint, expiresAt: at };
}

/** The checks of `expireEscrow` (refusals audited): the key exists and the expiry is only brought forward. */
export async function checkEscrowExpiry(c: BackupCore, fingerprint: string, at: number, actor: string) {
  const row = await escrowRow(c, fingerprint);
  if (!Number.isFinite(at)) throw backupErrors.usage('--at must be a date (ISO 8601)');
  if (row.expires_at !== null && at > Number(row.expires_at)) {
    await c.d.audit.recordNow({
      action: 'backup.escrow.expire',
      actor,
      outcome: 'denied',
      reason: 'EXPIRY_LATER',
      targets: { escrow: row.fingerprint },
    });
    throw backupErrors.usage(
      `escrow key ${row.fingerprint} already expires at ${new Date(Number(row.expires_at)).toISOString()}; an expiry can only be brought forward`,
    );
  }
  return row;
}
