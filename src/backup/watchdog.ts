import { collectSecondaryDrills } from './secondary.js';
import { listTargets } from './catalogue.js';
import { HOUR, type BackupCore } from './core.js';
import { maxAgeMs } from './retention.js';
import { alertPending, finishPending, shredExpired } from './shred.js';

/** Completed backups: what reached `complete`, whether or not it was destroyed since (a failed or abandoned run never did). */
const NEVER_COMPLETED = ['failed', 'abandoned'];

/**
 * The newest backup that completed at each registered target (its creation time), or null.
 * Verifying an old backup again does not count: the alarm is about new backups.
 */
export async function newestCompleted(c: BackupCore): Promise<{ target: string; since: number; at: number | null }[]> {
  const rows = await c.db
    .selectFrom('backups')
    .select(['target', (eb) => eb.fn.max('created_at').as('at')])
    .where((eb) =>
      eb.or([
        eb('state', '=', 'complete'),
        eb.and([eb('state', 'in', ['delete-pending', 'deleted']), eb('deleted_reason', 'not in', NEVER_COMPLETED)]),
      ]),
    )
    .groupBy('target')
    .execute();
  const at = new Map(rows.map((r) => [r.target, r.at === null ? null : Number(r.at)]));
  return (await listTargets(c.db)).map((t) => ({
    target: t.name,
    since: at.get(t.name) ?? t.createdAt,
    at: at.get(t.name) ?? null,
  }));
}

/**
 * Hourly: raises the dead-man alarm when a registered target has had no new completed backup for
 * `deadManHours` (or none is registered since the appliance was created), crypto-shreds backups
 * past their promised life even when the daily job is not running, and retries destructions that
 * could not finish (alerting while any is left).
 */
export async function watchdog(
  c: BackupCore,
  o: { actor: string },
): Promise<{ overdue: boolean; lastCompletedAt: number | null; destroyed: string[] }> {
  const now = c.now();
  const limit = c.cfg.deadManHours * HOUR;
  const per = await newestCompleted(c);
  const completed = per.map((p) => p.at).filter((x): x is number => x !== null);
  const lastCompletedAt = completed.length ? Math.max(...completed) : null;
  let overdue = false;
  if (!per.length) {
    const created = await c.db
      .selectFrom('appliance_meta')
      .select('value')
      .where('key', '=', 'created_at')
      .executeTakeFirst();
    const since = created ? Date.parse(created.value) : now;
    if (now - since > limit) {
      overdue = true;
      await c.alert({
        kind: 'backup.overdue',
        severity: 'critical',
        message: `no backup target is registered and no backup was ever taken (appliance created ${new Date(since).toISOString()})`,
      });
    }
  }
  for (const p of per) {
    if (now - p.since <= limit) {
      await c.d.alerts
        .clear?.({ kind: 'backup.overdue', targets: { target: p.target } })
        .catch((e: unknown) => c.d.log.error({ err: e }, 'alert not cleared'));
      continue;
    }
    overdue = true;
    await c.alert({
      kind: 'backup.overdue',
      severity: 'critical',
      message:
        p.at === null
          ? `no backup has ever completed at ${p.target} (registered ${new Date(p.since).toISOString()})`
          : `no new backup completed at ${p.target} for ${((now - p.since) / HOUR).toFixed(1)} h (last taken ${new Date(p.since).toISOString()})`,
      targets: { target: p.target },
    });
  }
  const destroyed: string[] = [];
  const expiredBefore = now - maxAgeMs(c.cfg.graceHours * HOUR);
  const due = await c.db
    .selectFrom('backups')
    .select('target')
    .where((eb) =>
      eb.or([
        eb('state', '=', 'delete-pending'),
        eb.and([eb('state', '=', 'complete'), eb('created_at', '<', expiredBefore)]),
      ]),
    )
    .execute();
  if (due.length) {
    await c.withLock(true, async () => {
      for (const info of await listTargets(c.db)) {
        if (!due.some((d) => d.target === info.name)) continue;
        await shredExpired(c, info.name, o.actor);
        const t = c.open(info);
        try {
          destroyed.push(...(await finishPending(c, t, info.name, o.actor)));
        } catch (e) {
          c.d.log.error({ err: e, target: info.name }, 'watchdog: destructions not finished at the target');
          await alertPending(c, info.name, (e as Error).message);
        } finally {
          await t.close();
        }
      }
    });
  }
  // reports of restore drills run on the secondary site (./secondary.ts): never stops the watchdog
  await collectSecondaryDrills(c).catch((e: unknown) =>
    c.d.log.warn({ err: e }, 'watchdog: secondary drill reports not collected'),
  );
  return { overdue, lastCompletedAt, destroyed };
}
