import { listBackups } from './catalogue.js';
import { HOUR, type BackupCore } from './core.js';
import { backupErrors } from './errors.js';
import { backupIdTime, isBackupId, SIDECAR, TMP_PREFIX } from './format.js';
import { keyRefOf, openSidecar, readSidecar } from './reader.js';
import { maxAgeMs, planRetention, type HeldBackup } from './retention.js';
import type { BackupTarget } from './targets/types.js';

/** Destroying backups: retention's plan, adopting what the target holds, crypto-shredding and deletion, leftovers of interrupted runs. */

/**
 * Puts right what an interrupted run left. Called under the lease, so no other run is writing.
 * - A catalogue row still `uploading` whose backup is at the target under its final name was
 *   killed in the rename window: that backup was verified before the rename, so it is adopted
 *   (its sidecar's MAC checked by the HSM) and managed like any other.
 * - Other `uploading` rows are marked failed, their keys shredded.
 * - `.tmp-*` directories (never complete-looking) are removed.
 */
export async function cleanTemp(c: BackupCore, t: BackupTarget, target: string, actor: string): Promise<void> {
  const stale = await c.db
    .selectFrom('backups')
    .select('id')
    .where('target', '=', target)
    .where('state', '=', 'uploading')
    .execute();
  const listed = await t.list('');
  const final = new Set(listed.filter((e) => e.type === 'dir' && isBackupId(e.name)).map((e) => e.name));
  let shredded = 0;
  for (const r of stale) {
    if (final.has(r.id) && (await adoptOne(c, t, target, r.id, 'update'))) continue;
    await c.shredKey(r.id);
    await c.db
      .updateTable('backups')
      .set({
        state: 'failed',
        wrapped_key: null,
        error: 'ABANDONED',
        deleted_at: c.d.clock.nowMs(),
        deleted_reason: 'abandoned',
      })
      .where('id', '=', r.id)
      .execute();
    await c.d.audit.recordNow({
      action: 'backup.delete',
      actor,
      outcome: 'success',
      reason: 'ABANDONED',
      targets: { target, backup: r.id },
    });
    shredded++;
  }
  if (shredded) await c.truncateWal();
  for (const e of listed) if (e.name.startsWith(TMP_PREFIX)) await t.remove(e.name);
}

// ------------------------------------------------------------------ retention

/**
 * Brings the catalogue in line with the target (backups of this appliance found there but
 * unknown here, e.g. after a restore, are adopted), then applies the weekday-slot plan.
 */
export async function retain(
  c: BackupCore,
  t: BackupTarget,
  target: string,
  verifiedNew: HeldBackup | null,
  actor: string,
): Promise<{ id: string; reason: string }[]> {
  const out = (await adopt(c, t, target, actor)).map((id) => ({ id, reason: 'unmanaged' }));
  await finishPending(c, t, target, actor);
  const held = (await listBackups(c.db, { target }))
    .filter((b) => b.state === 'complete')
    .map((b) => ({ id: b.id, createdAt: b.createdAt, slot: b.slot }));
  const plan = planRetention({ held, verifiedNew, now: c.d.clock.nowMs(), graceMs: c.cfg.graceHours * HOUR });
  for (const d of plan) {
    if (d.unreplaced) await alertUnreplaced(c, target, d.id);
    await destroy(c, t, target, d.id, d.reason, actor);
    out.push({ id: d.id, reason: d.reason });
  }
  return out;
}

/** Retries the destructions that could not finish (keys shredded, files not yet verified gone). */
export async function finishPending(c: BackupCore, t: BackupTarget, target: string, actor: string): Promise<string[]> {
  const pending = await c.db
    .selectFrom('backups')
    .select('id')
    .where('target', '=', target)
    .where('state', '=', 'delete-pending')
    .execute();
  for (const r of pending) await destroy(c, t, target, r.id, 'retry', actor);
  return pending.map((r) => r.id);
}

/**
 * Crypto-shreds, without reaching the target, every backup at `target` past its promised life:
 * its HSM key is destroyed and the row stays `delete-pending` until a later pass at a reachable,
 * marked target has verified its files gone. Returns the ids shredded now.
 */
export async function shredExpired(c: BackupCore, target: string, actor: string): Promise<string[]> {
  const held = (await listBackups(c.db, { target }))
    .filter((b) => b.state === 'complete')
    .map((b) => ({ id: b.id, createdAt: b.createdAt, slot: b.slot }));
  const plan = planRetention({ held, verifiedNew: null, now: c.now(), graceMs: c.cfg.graceHours * HOUR });
  for (const d of plan) {
    if (d.unreplaced) await alertUnreplaced(c, target, d.id);
    await markPending(c, target, d.id, d.reason, actor);
  }
  if (plan.length) await c.truncateWal();
  for (const d of plan) await c.shredKey(d.id);
  return plan.map((d) => d.id);
}

const alertUnreplaced = (c: BackupCore, target: string, id: string) =>
  c.alert({
    kind: 'backup.expired-unreplaced',
    severity: 'warning',
    message: `backup ${id} at ${target} reached the end of its promised life without a newer verified backup in its weekday slot; it was destroyed`,
    targets: { target, backup: id },
  });

/** Alerts while destructions at `target` are unfinished (called by every run and watchdog pass until none is left). */
export async function alertPending(c: BackupCore, target: string, why: string): Promise<void> {
  const pending = await c.db
    .selectFrom('backups')
    .select('id')
    .where('target', '=', target)
    .where('state', '=', 'delete-pending')
    .execute();
  if (!pending.length) return;
  await c.alert({
    kind: 'backup.delete-failed',
    severity: 'critical',
    message: `${pending.length} backup(s) at ${target} are destroyed here (HSM keys destroyed) but their files are not yet verified gone at the target (${why}); retried at every run`,
    targets: { target },
  });
}

async function markPending(c: BackupCore, target: string, id: string, reason: string, actor: string): Promise<void> {
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: 'backup.delete',
      actor,
      outcome: 'success',
      reason: reason.toUpperCase().replace(/-/g, '_'),
      targets: { target, backup: id },
    });
    await trx
      .updateTable('backups')
      .set({ wrapped_key: null, state: 'delete-pending', deleted_reason: reason })
      .where('id', '=', id)
      .execute();
  });
}

/**
 * Brings what the target holds in line with the catalogue: nothing of this appliance stays at the
 * target unmanaged. A backup found there that the catalogue does not know (e.g. after a restore)
 * is adopted when its sidecar's MAC checks out in the HSM; one the catalogue holds as failed or
 * deleted (its key already shredded here, but the sidecar at the target still holds the
 * HSM-wrapped key: e.g. a run killed in the rename window, before this was handled) is destroyed.
 */
export async function adopt(c: BackupCore, t: BackupTarget, target: string, actor: string): Promise<string[]> {
  const rows = new Map(
    (await c.db.selectFrom('backups').select(['id', 'state']).where('target', '=', target).execute()).map((r) => [
      r.id,
      r.state,
    ]),
  );
  const removed: string[] = [];
  for (const e of await t.list('')) {
    if (e.type !== 'dir' || !isBackupId(e.name)) continue;
    const state = rows.get(e.name);
    if (state === undefined) await adoptOne(c, t, target, e.name, 'insert');
    else if (state === 'failed' || state === 'deleted') {
      await removeUnmanaged(c, t, target, e.name, actor);
      removed.push(e.name);
    }
  }
  return removed;
}

/** Adopts one backup found at the target; false (logged, alerted past its life) when it cannot be. */
async function adoptOne(
  c: BackupCore,
  t: BackupTarget,
  target: string,
  id: string,
  how: 'insert' | 'update',
): Promise<boolean> {
  try {
    const { sidecar } = await readSidecar(t, id, id);
    await openSidecar(c.d.keys, sidecar, { backupId: id, applianceId: c.d.config.applianceId }, id).then((k) =>
      k.fill(0),
    );
    const facts = {
      slot: sidecar.slot,
      created_at: backupIdTime(id),
      state: 'complete',
      plain_size: sidecar.plainSize,
      size: sidecar.parts.reduce((s, p) => s + p.size, 0),
      parts: sidecar.parts.length,
      members: null,
      wrapped_key: keyRefOf(sidecar),
      escrow: JSON.stringify(sidecar.escrow),
      verified_at: null,
      error: null,
      deleted_at: null,
      deleted_reason: null,
    };
    if (how === 'insert')
      await c.db
        .insertInto('backups')
        .values({ id, target, ...facts })
        .execute();
    else await c.db.updateTable('backups').set(facts).where('id', '=', id).execute();
    c.d.log.info(
      { backup: id, target },
      how === 'insert'
        ? 'backup found at the target adopted into the catalogue'
        : 'backup of an interrupted run, complete at the target, adopted into the catalogue',
    );
    return true;
  } catch (err) {
    // not ours, or damaged: never silently kept past its life
    c.d.log.warn({ err, backup: id, target }, 'a backup at the target could not be adopted');
    if (c.d.clock.nowMs() - backupIdTime(id) > maxAgeMs(c.cfg.graceHours * HOUR)) {
      await c.alert({
        kind: 'backup.delete-failed',
        severity: 'critical',
        message: `an unreadable backup ${id} at ${target} is past its promised life; check and delete it by hand`,
        targets: { target, backup: id },
      });
    }
    return false;
  }
}

/** Deletes at the target a backup the catalogue no longer manages: its sidecar (the wrapped key) first, then the rest; audited. */
export async function removeUnmanaged(
  c: BackupCore,
  t: BackupTarget,
  target: string,
  id: string,
  actor: string,
): Promise<void> {
  await c.d.audit.recordNow({
    action: 'backup.delete',
    actor,
    outcome: 'success',
    reason: 'UNMANAGED',
    targets: { target, backup: id },
  });
  await c.shredKey(id);
  await t.remove(`${id}/${SIDECAR}`);
  await t.remove(id);
  c.d.log.warn({ backup: id, target }, 'a backup the catalogue no longer manages was destroyed at the target');
}

/**
 * Destroys a backup: first its key (crypto-shredding: the catalogue's reference dropped, audited
 * in the same transaction, then its own HSM key object destroyed, so no copy of its files can be
 * decrypted), then at the target its sidecar and parts. The catalogue says `deleted` only once the
 * files are verified gone from a directory that still holds this appliance's marker (an unmounted
 * share lists as empty, and must not pass for a deletion). Until then the row stays
 * `delete-pending`, and every later run or watchdog pass retries and alerts.
 */
export async function destroy(
  c: BackupCore,
  t: BackupTarget,
  target: string,
  id: string,
  reason: string,
  actor: string,
): Promise<void> {
  await markPending(c, target, id, reason, actor);
  await c.truncateWal();
  try {
    await c.shredKey(id);
    await c.checkMarker(t, target);
    await t.remove(`${id}/${SIDECAR}`);
    await t.remove(id);
    if ((await t.list('')).some((e) => e.name === id))
      throw backupErrors.io(t.display, `${id} is still listed after its deletion`);
    await c.checkMarker(t, target);
  } catch (e) {
    await c.alert({
      kind: 'backup.delete-failed',
      severity: 'critical',
      message: `backup ${id} at ${target} could not be verified destroyed (${(e as Error).message}); it stays pending and is retried at every run`,
      targets: { target, backup: id },
    });
    throw e;
  }
  await c.db
    .updateTable('backups')
    .set({ state: 'deleted', deleted_at: c.d.clock.nowMs() })
    .where('id', '=', id)
    .execute();
}
