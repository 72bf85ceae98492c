import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';
import type { Auditor } from '../audit/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AppError } from '../shared/errors.js';
import { redactText } from '../shared/redact.js';
import { describeDbError } from '../audit/index.js';
import type { Alert, AlertChannel, AlertNotice, Alerter } from './types.js';
import type { AlertOutbox } from './outbox.js';

export type Severity = Alert['severity'];
const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

export interface DbAlerterOptions {
  db: Kysely<MonitoringSchema>;
  audit: Auditor;
  clock: Clock;
  log: Logger;
  applianceId: string;
  /** delivery (src/monitoring/outbox.ts) */
  outbox: AlertOutbox;
  /** lowest severity each channel receives (default: every alert) */
  minSeverity?: Readonly<Record<string, Severity>>;
  /** a one-off alert raised again after this long opens a new alert (default 15 min) */
  dedupeMs?: number;
  /** an open, unacknowledged alert still being raised is re-notified this often (default 4 h) */
  renotifyMs?: number;
}

const KIND = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,3}$/;
const TARGET_KEY = /^[a-z][a-zA-Z0-9_]{0,31}$/;
const TARGET_ID = /^[\x21-\x7e]{1,128}$/;
const ACTOR = /^(?:(?:user|token|local|job):[\x21-\x7e]{1,128}|system|rule)$/;

/** @deprecated name kept for callers: what a channel receives */
export type DeliveredAlert = AlertNotice;

export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface AlertView {
  id: string;
  kind: string;
  severity: Severity;
  message: string;
  targets: Record<string, string>;
  state: AlertState;
  raisedAt: number;
  lastAt: number;
  repeats: number;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  resolvedAt: number | null;
  resolvedBy: string | null;
  deliveries: Record<string, string>;
}

const keyOf = (kind: string, targets: Record<string, string> | undefined) =>
  `${kind}|${JSON.stringify(Object.entries(targets ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))}`;

/**
 * Alerts (src/monitoring/types.ts), with a life cycle: open → acknowledged → resolved.
 *
 * - `raise` stores the alert, audits it (`alert.raised`) and queues a notice per channel in the
 *   outbox, all in one transaction, then wakes the deliverer. While an alert with the same kind
 *   and targets is open and was last raised less than `dedupeMs` ago, raising it again only counts
 *   a repeat; if nobody acknowledged it for `renotifyMs`, a reminder is queued (`alert.reminded`).
 * - `clear` (the condition ended) and `resolve` (a person) close it and queue a `resolved` notice
 *   (`alert.resolved`); `acknowledge` stops reminders (`alert.acknowledged`).
 * - If the database cannot be written, the alert is still logged and handed straight to the
 *   channels, and `raise` rejects.
 */
export class DbAlerter implements Alerter {
  private readonly direct = new Set<Promise<void>>();

  constructor(private readonly o: DbAlerterOptions) {}

  async raise(a: Alert): Promise<void> {
    const alert = this.validate(a);
    const now = this.o.clock.nowMs();
    const key = keyOf(alert.kind, alert.targets);
    let notice: AlertNotice | undefined;
    try {
      notice = await this.o.db.transaction().execute(async (trx) => {
        const open = await trx
          .selectFrom('alerts')
          .select(['id', 'at', 'state', 'last_at', 'notified_at', 'severity'])
          .where('dedupe_key', '=', key)
          .where('state', 'in', ['open', 'acknowledged'])
          .orderBy('at', 'desc')
          .executeTakeFirst();
        if (open && now - Number(open.last_at ?? open.at) < (this.o.dedupeMs ?? 15 * 60_000)) {
          const remind =
            open.state === 'open' && now - Number(open.notified_at ?? open.at) >= (this.o.renotifyMs ?? 4 * 3_600_000);
          await trx
            .updateTable('alerts')
            .set((eb) => ({ repeats: eb('repeats', '+', 1), last_at: now, ...(remind ? { notified_at: now } : {}) }))
            .where('id', '=', open.id)
            .execute();
          if (!remind) return undefined;
          const n: AlertNotice = {
            ...alert,
            severity: open.severity as Severity,
            id: open.id,
            at: new Date(Number(open.at)).toISOString(),
            applianceId: this.o.applianceId,
            notice: 'reminder',
          };
          await this.o.audit.record(trx, {
            action: 'alert.reminded',
            actor: 'system',
            outcome: 'success',
            targets: { ...(alert.targets ?? {}), alert: open.id, kind: alert.kind },
          });
          await this.o.outbox.enqueue(trx, n, this.channelsFor(n.severity));
          return n;
        }
        const id = crypto.randomUUID();
        const n: AlertNotice = {
          ...alert,
          id,
          at: new Date(now).toISOString(),
          applianceId: this.o.applianceId,
          notice: 'raised',
        };
        await trx
          .insertInto('alerts')
          .values({
            id,
            at: now,
            kind: alert.kind,
            severity: alert.severity,
            message: alert.message,
            targets: alert.targets ? JSON.stringify(alert.targets) : null,
            deliveries: null,
            repeats: 0,
            dedupe_key: key,
            state: 'open',
            last_at: now,
            notified_at: now,
            acked_at: null,
            acked_by: null,
            resolved_at: null,
            resolved_by: null,
          })
          .execute();
        await this.o.audit.record(trx, {
          action: 'alert.raised',
          actor: 'system',
          outcome: 'success',
          targets: { ...(alert.targets ?? {}), alert: id, kind: alert.kind },
        });
        await this.o.outbox.enqueue(trx, n, this.channelsFor(alert.severity));
        return n;
      });
    } catch (e) {
      const failure =
        e instanceof AppError
          ? e
          : new AppError(
              'ALERT_UNRECORDED',
              `the alert could not be recorded (${describeDbError(e)}); it was logged and sent to the channels`,
              { httpStatus: 503, cause: e },
            );
      const n: AlertNotice = {
        ...alert,
        id: crypto.randomUUID(),
        at: new Date(now).toISOString(),
        applianceId: this.o.applianceId,
        notice: 'raised',
      };
      this.logAlert(n);
      this.o.log.error({ err: e, alert: n.id }, 'alert could not be recorded; sending it anyway');
      this.sendDirect(n);
      throw failure;
    }
    if (notice) {
      this.logAlert(notice);
      this.o.outbox.wake();
    }
  }

  async clear(a: Pick<Alert, 'kind' | 'targets'>): Promise<void> {
    const key = keyOf(a.kind, a.targets);
    const open = await this.o.db
      .selectFrom('alerts')
      .select('id')
      .where('dedupe_key', '=', key)
      .where('state', 'in', ['open', 'acknowledged'])
      .execute();
    for (const r of open) await this.resolve(r.id, 'rule');
  }

  /** A person (or the rule whose condition ended) resolves an alert. False when it was not open. */
  async resolve(id: string, by: string, source?: Parameters<Auditor['record']>[1]['source']): Promise<boolean> {
    return this.transition(id, by, 'resolved', source);
  }

  /** A person takes an alert in hand: no more reminders. False when it was not open. */
  async acknowledge(id: string, by: string, source?: Parameters<Auditor['record']>[1]['source']): Promise<boolean> {
    return this.transition(id, by, 'acknowledged', source);
  }

  private async transition(
    id: string,
    by: string,
    to: 'acknowledged' | 'resolved',
    source: Parameters<Auditor['record']>[1]['source'],
  ): Promise<boolean> {
    if (!ACTOR.test(by)) throw new AppError('ALERT_INVALID', 'bad actor', { httpStatus: 500, expose: false });
    const now = this.o.clock.nowMs();
    const from = to === 'resolved' ? ['open', 'acknowledged'] : ['open'];
    const notice = await this.o.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || !from.includes(row.state)) return null;
      const r = await trx
        .updateTable('alerts')
        .set(
          to === 'resolved'
            ? { state: to, resolved_at: now, resolved_by: by }
            : { state: to, acked_at: now, acked_by: by },
        )
        .where('id', '=', id)
        .where('state', 'in', from)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return null;
      const targets = row.targets ? (JSON.parse(row.targets) as Record<string, string>) : {};
      await this.o.audit.record(trx, {
        action: `alert.${to}`,
        actor: by === 'rule' ? 'system' : by,
        ...(by === 'rule' ? { reason: 'CONDITION_CLEARED' } : {}),
        outcome: 'success',
        targets: { ...targets, alert: id, kind: row.kind },
        ...(source ? { source } : {}),
      });
      if (to !== 'resolved') return undefined;
      const n: AlertNotice = {
        kind: row.kind,
        severity: row.severity as Severity,
        message: row.message,
        ...(row.targets ? { targets } : {}),
        id,
        at: new Date(Number(row.at)).toISOString(),
        applianceId: this.o.applianceId,
        notice: 'resolved',
      };
      await this.o.outbox.enqueue(trx, n, this.channelsFor(n.severity));
      return n;
    });
    if (notice === null) return false;
    if (notice) {
      this.o.log.info({ alert: { id, kind: notice.kind }, by }, `ALERT RESOLVED ${notice.kind}`);
      this.o.outbox.wake();
    }
    return true;
  }

  /** Alerts for the console: open first (newest first), then the history. */
  async list(o: { state?: AlertState | 'active'; limit?: number; before?: number } = {}): Promise<AlertView[]> {
    let q = this.o.db
      .selectFrom('alerts')
      .selectAll()
      .orderBy('at', 'desc')
      .limit(Math.min(o.limit ?? 100, 500));
    if (o.state === 'active') q = q.where('state', 'in', ['open', 'acknowledged']);
    else if (o.state) q = q.where('state', '=', o.state);
    if (o.before !== undefined) q = q.where('at', '<', o.before);
    return (await q.execute()).map((r) => ({
      id: r.id,
      kind: r.kind,
      severity: r.severity as Severity,
      message: r.message,
      targets: r.targets ? (JSON.parse(r.targets) as Record<string, string>) : {},
      state: r.state as AlertState,
      raisedAt: Number(r.at),
      lastAt: Number(r.last_at ?? r.at),
      repeats: Number(r.repeats),
      acknowledgedAt: r.acked_at === null ? null : Number(r.acked_at),
      acknowledgedBy: r.acked_by,
      resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
      resolvedBy: r.resolved_by,
      deliveries: r.deliveries ? (JSON.parse(r.deliveries) as Record<string, string>) : {},
    }));
  }

  /** Waits for deliveries in progress and delivers what is due (tests, shutdown, the CLI before exiting). */
  async settle(timeoutMs = 10_000): Promise<void> {
    while (this.direct.size) await Promise.all([...this.direct]);
    await this.o.outbox.drain(timeoutMs);
  }

  private channelsFor(severity: Severity): string[] {
    return this.o.outbox.channels
      .filter((c) => RANK[severity] >= RANK[this.o.minSeverity?.[c.name] ?? 'info'])
      .map((c) => c.name);
  }

  private logAlert(n: AlertNotice): void {
    const level = n.severity === 'critical' ? 'error' : n.severity === 'warning' ? 'warn' : 'info';
    this.o.log[level](
      { alert: { id: n.id, kind: n.kind, severity: n.severity, targets: n.targets, notice: n.notice } },
      `ALERT ${n.kind}: ${n.message}`,
    );
  }

  /** the database is unusable: best effort, straight to the channels */
  private sendDirect(n: AlertNotice): void {
    const channels: AlertChannel[] = this.o.outbox.channels.filter((c) =>
      this.channelsFor(n.severity).includes(c.name),
    );
    const p = Promise.all(
      channels.map((c) =>
        c
          .send({ ...n, deliveryId: `${n.id}:direct` })
          .catch((e: unknown) =>
            this.o.log.error(
              { channel: c.name, alert: n.id, code: e instanceof AppError ? e.code : 'ERROR' },
              'alert channel failed',
            ),
          ),
      ),
    ).then(() => undefined);
    this.direct.add(p);
    void p.finally(() => this.direct.delete(p));
  }

  private validate(a: Alert): Alert {
    const bad = (m: string) => new AppError('ALERT_INVALID', `alert refused: ${m}`, { httpStatus: 500, expose: false });
    if (typeof a?.kind !== 'string' || !KIND.test(a.kind))
      throw bad('kind must be dotted lowercase, e.g. backup.failed');
    if (!['info', 'warning', 'critical'].includes(a.severity)) throw bad('severity must be info, warning or critical');
    if (typeof a.message !== 'string' || a.message.length === 0) throw bad('message is empty');
    const out: Alert = { kind: a.kind, severity: a.severity, message: redactText(a.message).slice(0, 1000) };
    if (a.targets) {
      const entries = Object.entries(a.targets);
      if (entries.length > 8) throw bad('more than 8 targets');
      for (const [k, v] of entries) {
        if (!TARGET_KEY.test(k) || k === 'alert' || k === 'kind' || typeof v !== 'string' || !TARGET_ID.test(v))
          throw bad('targets must be ids');
      }
      out.targets = { ...a.targets };
    }
    return out;
  }
}
