import { listBackups } from './catalogue.js';
import { HOUR, type BackupCore } from './core.js';
import { backupErrors } from './errors.js';
import { backupIdTime, isBackupId, SIDECAR, TMP_PREFIX } from './format.js';
import { openSidecar, readSidecar } from './reader.js';
import { maxAgeMs, planRetention, type HeldBackup } from './retention.js';
import type { BackupTarget } from './targets/types.js';

/** Destroying backups: retention's plan, adopting what the target holds, crypto-shredding and deletion, leftovers of interrupted runs. */

/**
 * Removes what an interrupted run left: `.tmp-*` directories (never complete-looking) and
 * catalogue rows still `uploading` (their keys are shredded). Called under the lease, so no
 * other run is writing.
 */
export async function cleanTemp(c: BackupCore, t: BackupTarget, target: string, actor: string): Promise<void> {
  const stale = await c.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'uploading').execute();
  for (const r of stale) {
    await c.db.updateTable('backups').set({ state: 'failed', wrapped_key: null, error: 'ABANDONED', deleted_at: c.d.clock.nowMs(), deleted_reason: 'abandoned' }).where('id', '=', r.id).execute();
    await c.d.audit.recordNow({ action: 'backup.delete', actor, outcome: 'success', reason: 'ABANDONED', targets: { target, backup: r.id } });
  }
  if (stale.length) await c.truncateWal();
  for (const e of await t.list('')) if (e.name.startsWith(TMP_PREFIX)) await t.remove(e.name);
}

// ------------------------------------------------------------------ retention

/**
 * Brings the catalogue in line with the target (backups of this appliance found there but
 * unknown here, e.g. after a restore, are adopted), then applies the weekday-slot plan.
 */
export async function retain(c: BackupCore, t: BackupTarget, target: string, verifiedNew: HeldBackup | null, actor: string): Promise<{ id: string; reason: string }[]> {
  await adopt(c, t, target);
  const pending = await c.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'delete-pending').execute();
  for (const r of pending) await destroy(c, t, target, r.id, 'retry', actor);
  const held = (await listBackups(c.db, { target })).filter((b) => b.state === 'complete').map((b) => ({ id: b.id, createdAt: b.createdAt, slot: b.slot }));
  const plan = planRetention({ held, verifiedNew, now: c.d.clock.nowMs(), graceMs: c.cfg.graceHours * HOUR });
  const out: { id: string; reason: string }[] = [];
  for (const d of plan) {
    if (d.unreplaced) {
      await c.alert({ kind: 'backup.expired-unreplaced', severity: 'warning', message: `backup ${d.id} at ${target} reached the end of its promised life without a newer verified backup in its weekday slot; it was destroyed`, targets: { target, backup: d.id } });
    }
    await destroy(c, t, target, d.id, d.reason, actor);
    out.push({ id: d.id, reason: d.reason });
  }
  return out;
}

/** Inserts catalogue rows for this appliance's complete backups found at the target (sidecar MAC checked by the HSM). */
export async function adopt(c: BackupCore, t: BackupTarget, target: string): Promise<void> {
  const known = new Set((await c.db.selectFrom('backups').select('id').where('target', '=', target).execute()).map((r) => r.id));
  for (const e of await t.list('')) {
    if (e.type !== 'dir' || !isBackupId(e.name) || known.has(e.name)) continue;
    try {
      const { sidecar } = await readSidecar(t, e.name, e.name);
      await openSidecar(c.d.keys, sidecar, { backupId: e.name, applianceId: c.d.config.applianceId }, e.name).then((k) => k.fill(0));
      await c.db
        .insertInto('backups')
        .values({ id: e.name, target, slot: sidecar.slot, created_at: backupIdTime(e.name), state: 'complete', plain_size: sidecar.plainSize, size: sidecar.parts.reduce((s, p) => s + p.size, 0), parts: sidecar.parts.length, members: null, wrapped_key: JSON.stringify(sidecar.wrappedKey), escrow: JSON.stringify(sidecar.escrow), verified_at: null, error: null, deleted_at: null, deleted_reason: null })
        .execute();
      c.d.log.info({ backup: e.name, target }, 'backup found at the target adopted into the catalogue');
    } catch (err) {
      // not ours, or damaged: expiry still applies to it below if it is ours by name; never silently kept past its life
      c.d.log.warn({ err, backup: e.name, target }, 'a backup at the target could not be adopted');
      if (c.d.clock.nowMs() - backupIdTime(e.name) > maxAgeMs(c.cfg.graceHours * HOUR)) {
        await c.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `an unreadable backup ${e.name} at ${target} is past its promised life; check and delete it by hand`, targets: { target, backup: e.name } });
      }
    }
  }
}

/**
 * Destroys a backup: first its key in the catalogue (crypto-shredding, audited in the same
 * transaction: audit fails, nothing is destroyed), then at the target its sidecar (the other
 * copy of the wrapped key), then its parts; the deletion is checked by listing. If the target
 * cannot be reached, the row stays `delete-pending` and every later run or watchdog pass retries.
 */
export async function destroy(c: BackupCore, t: BackupTarget, target: string, id: string, reason: string, actor: string): Promise<void> {
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, { action: 'backup.delete', actor, outcome: 'success', reason: reason.toUpperCase().replace(/-/g, '_'), targets: { target, backup: id } });
    await trx.updateTable('backups').set({ wrapped_key: null, state: 'delete-pending', deleted_reason: reason }).where('id', '=', id).execute();
  });
  await c.truncateWal();
  try {
    await t.remove(`${id}/${SIDECAR}`);
    await t.remove(id);
    if ((await t.list('')).some((e) => e.name === id)) throw backupErrors.io(t.display, `${id} is still listed after its deletion`);
  } catch (e) {
    await c.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `backup ${id} at ${target} could not be deleted (${(e as Error).message}); its key is destroyed here, deletion will be retried`, targets: { target, backup: id } });
    throw e;
  }
  await c.db.updateTable('backups').set({ state: 'deleted', deleted_at: c.d.clock.nowMs() }).where('id', '=', id).execute();
}

