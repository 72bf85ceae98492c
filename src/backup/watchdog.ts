import { getTarget } from './catalogue.js';
import { HOUR, type BackupCore } from './core.js';
import { maxAgeMs } from './retention.js';
import { retain } from './shred.js';


/**
 * Hourly: raises the dead-man alarm when no backup was verified for `deadManHours`, and destroys
 * backups past their promised life even when the daily job is not running.
 */
export async function watchdog(c: BackupCore, o: { actor: string }): Promise<{ overdue: boolean; lastVerifiedAt: number | null; destroyed: string[] }> {
  const now = c.d.clock.nowMs();
  const last = await c.db.selectFrom('backups').select((eb) => eb.fn.max('verified_at').as('v')).where('state', 'in', ['complete', 'delete-pending', 'deleted']).executeTakeFirst();
  const lastVerifiedAt = last?.v === null || last?.v === undefined ? null : Number(last.v);
  let since = lastVerifiedAt;
  if (since === null) {
    const created = await c.db.selectFrom('appliance_meta').select('value').where('key', '=', 'created_at').executeTakeFirst();
    since = created ? Date.parse(created.value) : now;
  }
  const overdue = now - since > c.cfg.deadManHours * HOUR;
  if (overdue) {
    await c.alert({
      kind: 'backup.overdue',
      severity: 'critical',
      message: lastVerifiedAt === null ? `no backup has ever been verified (appliance created ${new Date(since).toISOString()})` : `no backup verified for ${((now - since) / HOUR).toFixed(1)} h (last at ${new Date(since).toISOString()})`,
    });
  }
  const destroyed: string[] = [];
  const limit = now - maxAgeMs(c.cfg.graceHours * HOUR);
  const due = await c.db.selectFrom('backups').select(['id', 'target']).where((eb) => eb.or([eb('state', '=', 'delete-pending'), eb.and([eb('state', '=', 'complete'), eb('created_at', '<', limit)])])).execute();
  if (due.length) {
    await c.withLock(true, async () => {
      for (const target of new Set(due.map((d) => d.target))) {
        const info = await getTarget(c.db, target);
        if (!info) continue;
        const t = c.open(info);
        try {
          await c.checkMarker(t);
          destroyed.push(...(await retain(c, t, target, null, o.actor)).map((d) => d.id));
        } catch (e) {
          c.d.log.error({ err: e, target }, 'watchdog: expired backups not destroyed');
          // keys of expired backups are destroyed here even when the target is down
          const rows = await c.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'complete').where('created_at', '<', limit).execute();
          for (const r of rows) {
            await c.db.transaction().execute(async (trx) => {
              await c.d.audit.record(trx, { action: 'backup.delete', actor: o.actor, outcome: 'success', reason: 'EXPIRED', targets: { target, backup: r.id } });
              await trx.updateTable('backups').set({ wrapped_key: null, state: 'delete-pending', deleted_reason: 'expired' }).where('id', '=', r.id).execute();
            });
          }
          await c.truncateWal();
          await c.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `expired backups at ${target} could not be deleted (${(e as Error).message}); their keys are destroyed here, deletion at the target will be retried`, targets: { target } });
        } finally {
          await t.close();
        }
      }
    });
  }
  return { overdue, lastVerifiedAt, destroyed };
}

