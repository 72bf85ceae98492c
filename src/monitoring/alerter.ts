import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import type { Auditor } from '../audit/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AppError } from '../shared/errors.js';
import { redactText } from '../shared/redact.js';
import { describeDbError } from '../audit/errors.js';
import type { Alert, AlertChannel, Alerter } from './types.js';

export interface DbAlerterOptions {
  db: Kysely<Database>;
  audit: Auditor;
  clock: Clock;
  log: Logger;
  applianceId: string;
  channels: readonly AlertChannel[];
  /** the same kind with the same targets is sent once per window; repeats are counted (default 15 min) */
  dedupeMs?: number;
}

const KIND = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,3}$/;
const TARGET_KEY = /^[a-z][a-zA-Z0-9_]{0,31}$/;
const TARGET_ID = /^[\x21-\x7e]{1,128}$/;

export type DeliveredAlert = Alert & { id: string; at: string; applianceId: string };

/**
 * Alerts (src/monitoring/types.ts): each one is stored in `alerts` and audited as `alert.raised`
 * in the same transaction, logged, then handed to every channel in the background (a slow or
 * failing channel never delays the raiser; the outcome per channel is stored with the alert).
 * If the database cannot be written, the alert is still logged and sent, and `raise` rejects.
 */
export class DbAlerter implements Alerter {
  private readonly recent = new Map<string, { id: string; at: number }>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: DbAlerterOptions) {}

  async raise(a: Alert): Promise<void> {
    const alert = this.validate(a);
    const now = this.o.clock.nowMs();
    const key = `${alert.kind}|${JSON.stringify(Object.entries(alert.targets ?? {}).sort())}`;
    const prev = this.recent.get(key);
    if (prev && now - prev.at < (this.o.dedupeMs ?? 15 * 60_000)) {
      await this.o.db
        .updateTable('alerts')
        .set((eb) => ({ repeats: eb('repeats', '+', 1) }))
        .where('id', '=', prev.id)
        .execute()
        .catch(() => undefined);
      return;
    }
    const id = crypto.randomUUID();
    const full: DeliveredAlert = { ...alert, id, at: new Date(now).toISOString(), applianceId: this.o.applianceId };
    this.recent.set(key, { id, at: now });
    const level = alert.severity === 'critical' ? 'error' : alert.severity === 'warning' ? 'warn' : 'info';
    this.o.log[level]({ alert: { id, kind: alert.kind, severity: alert.severity, targets: alert.targets } }, `ALERT ${alert.kind}: ${alert.message}`);
    let failure: unknown;
    try {
      await this.o.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('alerts')
          .values({ id, at: now, kind: alert.kind, severity: alert.severity, message: alert.message, targets: alert.targets ? JSON.stringify(alert.targets) : null, deliveries: null, repeats: 0 })
          .execute();
        await this.o.audit.record(trx, { action: 'alert.raised', actor: 'system', outcome: 'success', targets: { ...(alert.targets ?? {}), alert: id, kind: alert.kind } });
      });
    } catch (e) {
      failure = e instanceof AppError ? e : new AppError('ALERT_UNRECORDED', `the alert could not be recorded (${describeDbError(e)}); it was logged and sent to the channels`, { httpStatus: 503, cause: e });
      this.recent.delete(key);
      this.o.log.error({ err: e, alert: id }, 'alert could not be recorded; sending it anyway');
    }
    this.deliver(full, failure === undefined);
    if (failure !== undefined) throw failure;
  }

  /** Waits for deliveries in progress (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private deliver(a: DeliveredAlert, stored: boolean): void {
    if (!this.o.channels.length) return;
    const p = (async () => {
      const results: Record<string, string> = {};
      await Promise.all(
        this.o.channels.map(async (c) => {
          try {
            await c.send(a);
            results[c.name] = 'sent';
          } catch (e) {
            const code = e instanceof AppError ? e.code : ((e as NodeJS.ErrnoException).code ?? 'ERROR');
            results[c.name] = `failed: ${code}`;
            this.o.log.error({ channel: c.name, alert: a.id, code }, 'alert channel failed');
          }
        }),
      );
      if (stored) await this.o.db.updateTable('alerts').set({ deliveries: JSON.stringify(results) }).where('id', '=', a.id).execute().catch(() => undefined);
    })();
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private validate(a: Alert): Alert {
    const bad = (m: string) => new AppError('ALERT_INVALID', `alert refused: ${m}`, { httpStatus: 500, expose: false });
    if (typeof a?.kind !== 'string' || !KIND.test(a.kind)) throw bad('kind must be dotted lowercase, e.g. backup.failed');
    if (!['info', 'warning', 'critical'].includes(a.severity)) throw bad('severity must be info, warning or critical');
    if (typeof a.message !== 'string' || a.message.length === 0) throw bad('message is empty');
    const out: Alert = { kind: a.kind, severity: a.severity, message: redactText(a.message).slice(0, 1000) };
    if (a.targets) {
      const entries = Object.entries(a.targets);
      if (entries.length > 8) throw bad('more than 8 targets');
      for (const [k, v] of entries) {
        if (!TARGET_KEY.test(k) || k === 'alert' || k === 'kind' || typeof v !== 'string' || !TARGET_ID.test(v)) throw bad('targets must be ids');
      }
      out.targets = { ...a.targets };
    }
    return out;
  }
}
