import type { Kysely } from 'kysely';
import type { AuditSchema, SharedDb } from '../../db/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { AppError, isAppError } from '../../shared/errors.js';
import type { AuditEvent, AuditStamp, Auditor } from '../types.js';
import { normalizeEvent, type PendingRecord } from '../canonical.js';
import { auditErrors } from '../errors.js';
import { appendRecords } from './append.js';

export interface DbAuditorOptions {
  db: Kysely<AuditSchema>;
  clock: Clock;
  log: Logger;
  /** group commit: at most this many `recordNow` events per transaction (default 1000) */
  maxBatch?: number;
  /**
   * A group commit that cannot start its transaction within this time (default 30 s) refuses its
   * events (AUDIT_UNAVAILABLE) instead of hanging; when the transaction starts later it writes
   * nothing. This turns `recordNow` called inside a held SQLite transaction (a deadlock) into an
   * error, and bounds how long a request waits behind a long transaction.
   */
  startTimeoutMs?: number;
}

const ABANDONED = new Error('abandoned group commit');

interface Waiting {
  rec: PendingRecord;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The Auditor over the appliance database (the trail lives in `audit_events`).
 *
 * - `record(trx, e)` appends inside the caller's transaction: if it throws, the caller's change
 *   must roll back (kysely's `db.transaction().execute()` does so when the error propagates).
 * - `recordNow(e)` joins a group commit: concurrent calls are written in one transaction (one
 *   fsync), and each promise resolves only once its record is durable. Never call it from inside a
 *   transaction you hold on SQLite (the single connection is busy: it would wait for ever); use
 *   `record(trx, e)` there.
 */
export class DbAuditor implements Auditor {
  private readonly queue: Waiting[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  private readonly listeners = new Set<(lastSeq: number) => void>();
  private readonly maxBatch: number;

  constructor(private readonly o: DbAuditorOptions) {
    this.maxBatch = o.maxBatch ?? 1000;
  }

  async record(trx: SharedDb, e: AuditEvent): Promise<AuditStamp> {
    if (this.closed) throw auditErrors.closed();
    if (!trx.isTransaction) throw auditErrors.notInTransaction();
    const rec = normalizeEvent(e, this.o.clock.nowMs());
    const [r] = await appendRecords(trx, [rec]);
    if (!r) throw auditErrors.unavailable(new Error('no record was appended'));
    // committed later by the caller: listeners only take this as a hint to look
    this.notify(r.seq);
    return { seq: r.seq, hash: r.hash };
  }

  recordNow(e: AuditEvent): Promise<void> {
    if (this.closed) return Promise.reject(auditErrors.closed());
    let rec: PendingRecord;
    try {
      rec = normalizeEvent(e, this.o.clock.nowMs());
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rec, resolve, reject });
      this.schedule();
    });
  }

  /** Called (as a hint) after records were appended; returns an unsubscribe function. */
  onAppended(fn: (lastSeq: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Waits for queued records; further records are refused. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
  }

  /** Resolves once every record queued so far is written (or refused). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = null;
      if (this.queue.length) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    // let callers in the same tick join the batch
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const state = { started: false, abandoned: false };
      const refuse = (err: AppError) => {
        this.o.log.error(
          { code: err.code, events: batch.length },
          `audit records could not be written (${err.message}); the recorded actions were refused`,
        );
        for (const b of batch) b.reject(err);
      };
      const timer = setTimeout(() => {
        if (state.started) return;
        state.abandoned = true;
        refuse(
          auditErrors.unavailable({ code: 'TIMEOUT waiting for the database (recordNow inside a held transaction?)' }),
        );
      }, this.o.startTimeoutMs ?? 30_000);
      try {
        const records = await this.o.db.transaction().execute((trx) => {
          state.started = true;
          clearTimeout(timer);
          if (state.abandoned) throw ABANDONED;
          return appendRecords(
            trx,
            batch.map((b) => b.rec),
          );
        });
        for (const b of batch) b.resolve();
        const last = records[records.length - 1];
        if (last) this.notify(last.seq);
      } catch (e) {
        clearTimeout(timer);
        if (e === ABANDONED) continue;
        if (state.abandoned) continue;
        refuse(isAppError(e) ? e : auditErrors.unavailable(e));
      }
    }
  }

  private notify(seq: number): void {
    for (const fn of this.listeners) {
      try {
        fn(seq);
      } catch (e) {
        this.o.log.warn({ err: e }, 'audit listener failed');
      }
    }
  }
}
