import type { Kysely, Transaction } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AppError } from '../shared/errors.js';
import type { AlertChannel, AlertNotice } from './types.js';

export interface OutboxOptions {
  db: Kysely<MonitoringSchema>;
  clock: Clock;
  log: Logger;
  channels: readonly AlertChannel[];
  /** identifies this process as a deliverer (jobs/leases.ts makeHolderId) */
  holder: string;
  /** a claimed notice not delivered within this long may be claimed by another process (default 2 min) */
  leaseMs?: number;
  /** attempts before a notice is given up (default 12) */
  maxAttempts?: number;
  /** first retry delay, doubling up to 10 minutes (default 5 s) */
  backoffMs?: number;
}

const MAX_BACKOFF = 10 * 60_000;

/**
 * The alert delivery outbox. The raising transaction writes one row per (notice, channel), so an
 * alert raised by any process (server, CLI, scheduled job) is kept even if that process exits at
 * once. A deliverer claims a row by an atomic update that only succeeds on a row nobody holds (or
 * whose claim expired), sends it, and marks it sent: two processes never send the same row at the
 * same time; a process killed mid-send leaves a claim that expires and the row is sent again
 * (receivers deduplicate on `deliveryId`). Within a channel, notices go out in the order raised.
 */
export class AlertOutbox {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private again = false;
  private stopped = true;
  private readonly byName: Map<string, AlertChannel>;

  constructor(private readonly o: OutboxOptions) {
    this.byName = new Map(o.channels.map((c) => [c.name, c]));
  }

  get channels(): readonly AlertChannel[] {
    return this.o.channels;
  }

  /** Queues a notice for each channel (inside the caller's transaction). */
  async enqueue(trx: Transaction<MonitoringSchema>, notice: AlertNotice, channels: readonly string[]): Promise<void> {
    const now = this.o.clock.nowMs();
    for (const channel of channels) {
      const row = await trx
        .insertInto('alert_outbox')
        .values({
          alert_id: notice.id,
          channel,
          notice: notice.notice ?? 'raised',
          payload: '{}',
          created_at: now,
          next_at: now,
          attempts: 0,
          holder: null,
          lease_until: null,
          sent_at: null,
          failed_at: null,
          last_error: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const deliveryId = `${notice.id}:${row.id}`;
      await trx
        .updateTable('alert_outbox')
        .set({ payload: JSON.stringify({ ...notice, deliveryId }) })
        .where('id', '=', row.id)
        .execute();
    }
  }

  /** Delivers in the background: polls every `pollMs` and whenever woken. */
  start(pollMs = 1000): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      void this.deliverDue()
        .catch((e: unknown) => this.o.log.warn({ err: e }, 'alert outbox: delivery round failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, pollMs);
          this.timer?.unref();
        });
    };
    tick();
  }

  /** A notice was queued: deliver now rather than at the next poll. */
  wake(): void {
    void this.deliverDue().catch((e: unknown) => this.o.log.warn({ err: e }, 'alert outbox: delivery round failed'));
  }

  /**
   * Delivers until nothing is due or the deadline passes (CLI before exiting, shutdown, tests).
   * Returns the number of notices still waiting (due later, held by another process, or due now).
   */
  async drain(timeoutMs = 10_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      await this.deliverDue();
      const due = await this.pending(true);
      if (due === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.pending(false);
  }

  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.drain(graceMs).catch((e: unknown) =>
      this.o.log.warn({ err: e }, 'alert outbox: could not deliver before stopping'),
    );
  }

  private async pending(dueOnly: boolean): Promise<number> {
    let q = this.o.db
      .selectFrom('alert_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sent_at', 'is', null)
      .where('failed_at', 'is', null)
      .where('channel', 'in', [...this.byName.keys(), '']);
    if (dueOnly) q = q.where('next_at', '<=', this.o.clock.nowMs());
    return Number((await q.executeTakeFirst())?.n ?? 0);
  }

  /** One round: claims what is due (oldest first), sends, records the outcome. */
  deliverDue(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let n = 0;
      do {
        this.again = false;
        n += await this.round();
      } while (this.again);
      return n;
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async round(): Promise<number> {
    const { db, clock } = this.o;
    const names = [...this.byName.keys()];
    if (!names.length) return 0;
    const now = clock.nowMs();
    const due = await db
      .selectFrom('alert_outbox')
      .select(['id', 'channel'])
      .where('sent_at', 'is', null)
      .where('failed_at', 'is', null)
      .where('next_at', '<=', now)
      .where('channel', 'in', names)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('id')
      .limit(100)
      .execute();
    const perChannel = new Map<string, number[]>();
    for (const r of due) perChannel.set(r.channel, [...(perChannel.get(r.channel) ?? []), Number(r.id)]);
    let sent = 0;
    await Promise.all(
      [...perChannel].map(async ([name, ids]) => {
        for (const id of ids) {
          const ok = await this.deliverOne(this.byName.get(name)!, id);
          if (ok === 'sent') sent += 1;
          if (ok === 'failed') break; // keep the channel's order: the rest waits for the retry
        }
      }),
    );
    return sent;
  }

  private async deliverOne(channel: AlertChannel, id: number): Promise<'sent' | 'failed' | 'skipped'> {
    const { db, clock } = this.o;
    const now = clock.nowMs();
    const claim = await db
      .updateTable('alert_outbox')
      .set({ holder: this.o.holder, lease_until: now + (this.o.leaseMs ?? 120_000) })
      .where('id', '=', id)
      .where('sent_at', 'is', null)
      .where('failed_at', 'is', null)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    if (Number(claim.numUpdatedRows) !== 1) return 'skipped';
    const row = await db.selectFrom('alert_outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const notice = JSON.parse(row.payload) as AlertNotice;
    try {
      await channel.send(notice);
    } catch (e) {
      const attempts = Number(row.attempts) + 1;
      const code = e instanceof AppError ? `${e.code}: ${e.message}` : ((e as NodeJS.ErrnoException).code ?? 'ERROR');
      const giveUp = attempts >= (this.o.maxAttempts ?? 12);
      const delay = Math.min(MAX_BACKOFF, (this.o.backoffMs ?? 5000) * 2 ** (attempts - 1));
      this.o.log.error(
        { channel: channel.name, alert: notice.id, notice: notice.notice, attempts, code: code.slice(0, 300), giveUp },
        'alert channel failed',
      );
      await db
        .updateTable('alert_outbox')
        .set({
          attempts,
          holder: null,
          lease_until: null,
          last_error: code.slice(0, 500),
          next_at: clock.nowMs() + delay,
          ...(giveUp ? { failed_at: clock.nowMs() } : {}),
        })
        .where('id', '=', id)
        .where('holder', '=', this.o.holder)
        .execute();
      await this.summarise(notice.id);
      return 'failed';
    }
    await db
      .updateTable('alert_outbox')
      .set({ sent_at: clock.nowMs(), attempts: Number(row.attempts) + 1, holder: null, lease_until: null })
      .where('id', '=', id)
      .execute();
    await this.summarise(notice.id);
    return 'sent';
  }

  /** alerts.deliveries: per channel, the state of the latest notice */
  private async summarise(alertId: string): Promise<void> {
    await this.o.db
      .transaction()
      .execute(async (trx) => {
        const rows = await trx
          .selectFrom('alert_outbox')
          .select(['channel', 'sent_at', 'failed_at', 'last_error', 'attempts'])
          .where('alert_id', '=', alertId)
          .orderBy('id')
          .execute();
        const out: Record<string, string> = {};
        for (const r of rows) {
          const code = r.last_error?.split(':')[0] ?? 'ERROR';
          out[r.channel] =
            r.sent_at !== null
              ? 'sent'
              : r.failed_at !== null
                ? `failed: ${code}`
                : Number(r.attempts) > 0
                  ? `retrying: ${code}`
                  : 'pending';
        }
        await trx
          .updateTable('alerts')
          .set({ deliveries: JSON.stringify(out) })
          .where('id', '=', alertId)
          .execute();
      })
      .catch((e: unknown) => this.o.log.warn({ err: e }, 'alert outbox: could not record the delivery state'));
  }
}
