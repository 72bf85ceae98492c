import type { JobDefinition } from '../jobs/types.js';
import type { IncidentService } from './service.js';

/**
 * The critical conditions that open a draft incident themselves (docs/incidents.md): the HSM not
 * answering for minutes (the `hsm.unreachable` rule fires only after its `forMs`), a broken audit
 * chain, no complete backup for two days. Components name what
 * the status page would show.
 */
export const DRAFT_ALERTS: Readonly<Record<string, { title: string; component: string }>> = {
  'hsm.unreachable': { title: 'HSM unreachable: operations needing a key fail', component: 'hsm' },
  'audit.chain-broken': { title: 'Audit trail no longer verifies', component: 'audit' },
  'backup.stale': { title: 'No complete backup within the required age', component: 'backup' },
};

/** an open alert, as the monitoring module lists it */
export interface OpenAlert {
  id: string;
  kind: string;
  severity: string;
  raisedAt: number;
}

/**
 * Opens one draft incident per open critical alert of a kind in DRAFT_ALERTS; the alert's id is
 * recorded with the draft, so an ongoing condition (the same open alert) never opens a second
 * one. A condition that clears and fires again is a new alert, hence a new draft.
 */
export async function draftFromAlerts(
  service: IncidentService,
  alerts: readonly OpenAlert[],
  actor: string,
  o: DraftTiming,
): Promise<string[]> {
  const opened: string[] = [];
  for (const a of alerts) {
    const d = DRAFT_ALERTS[a.kind];
    if (!d || a.severity !== 'critical') continue;
    if (o.now - a.raisedAt < (o.minOpenMs?.[a.kind] ?? 0)) continue;
    const id = await service.draftForAlert(
      a.id,
      {
        title: d.title,
        severity: 'critical',
        detectedAt: a.raisedAt,
        message: `opened by the alert ${a.kind}`,
        components: [d.component],
        draft: true,
        alertId: a.id,
      },
      actor,
    );
    if (id) opened.push(id);
  }
  return opened;
}

export interface DraftTiming {
  now: number;
  /**
   * how long an alert of a kind must have been open before it opens a draft: `backup.stale` fires
   * at `monitoring.rules.backupAge.hours` (26 h by default) and opens a draft once no backup has
   * completed for two days
   */
  minOpenMs?: Partial<Record<string, number>>;
}

/** how long a `backup.stale` alert raised at `ageHours` must stay open before the backup is two days old */
export const backupStaleWaitMs = (ageHours: number): number => Math.max(0, 48 - ageHours) * 3_600_000;

/** every minute: drafts for the open critical alerts (single-flight across nodes, like every job) */
export function alertDraftJob(
  service: IncidentService,
  openAlerts: () => Promise<OpenAlert[]>,
  timing: () => DraftTiming,
): JobDefinition {
  return {
    name: 'incidents.alert-drafts',
    schedule: '* * * * *',
    run: async (ctx) => ({ opened: (await draftFromAlerts(service, await openAlerts(), ctx.actor, timing())).length }),
  };
}
