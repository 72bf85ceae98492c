import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import type { AuditSchema } from '../../db/index.js';
import type { AuditSyslogConfig } from '../../config/sections/audit.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { readAfter } from '../db/rows.js';
import { rowToCheckpoint } from '../checkpoint-format.js';
import { checkpointMessage, recordMessage, type SyslogHeader } from './format.js';
import { connectSyslog, type SyslogConnection } from './transport.js';

export const EVENTS_CURSOR = 'syslog';
export const CHECKPOINTS_CURSOR = 'syslog:checkpoints';

export interface SyslogForwarderOptions {
  db: Kysely<AuditSchema>;
  cfg: AuditSyslogConfig;
  applianceId: string;
  clock: Clock;
  log: Logger;
  /** opens a connection (default: connectSyslog) */
  connect?: (cfg: AuditSyslogConfig) => Promise<SyslogConnection>;
  /** the collector has been unreachable for `cfg.alertAfterMs` (once per outage) */
  onDown?: (info: { downForMs: number; error: string; queued: number }) => void;
  /** the collector is reachable again after onDown */
  onUp?: (info: { downForMs: number }) => void;
  /** records per write (default 500) */
  batch?: number;
  /** idle poll when not woken (default 1000 ms) */
  pollMs?: number;
  /**
   * TCP/TLS syslog has no acknowledgement: a record counts as delivered once the connection stayed
   * up this long after it was written (default 2000 ms). Until then it is resent if the connection
   * breaks, so delivery is at least once (a SIEM deduplicates on seq).
   */
  confirmMs?: number;
  hostname?: string;
  /** reconnection back-off doubles from 250 ms up to this (default 30 s) */
  maxBackoffMs?: number;
  /**
   * Single sender across processes and nodes (jobs/leases.ts): only the holder of the lease
   * `audit.syslog` sends; the others wait and take over when it stops or dies.
   */
  lease?: {
    acquire(name: string): Promise<boolean>;
    renew(name: string): Promise<boolean>;
    release(name: string): Promise<void>;
    ttlMs: number;
  };
}

export const LEASE = 'audit.syslog';

interface InFlight {
  t: number;
  evSeq: number;
  cpSeq: number;
  alerts: string[];
}

export interface ForwarderStatus {
  connected: boolean;
  /** last seq confirmed delivered (persisted) */
  deliveredSeq: number;
  /** last seq written to the current connection */
  sentSeq: number;
  /** holds the sending lease (always true without a lease) */
  leader: boolean;
  downSince: number | null;
  lastError: string | null;
}

/**
 * Real-time export of the trail to the SIEM. The durable queue is the trail itself: a cursor per
 * sink (`audit_cursors`) says what was delivered, so nothing is lost while the collector is down or
 * the appliance restarts; records are sent in seq order, then the checkpoints (which is how
 * checkpoints leave the box). Alerts given to `sendAlert` ride the same connection.
 */
export class SyslogForwarder {
  private conn: SyslogConnection | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private deliveredSeq = 0;
  private deliveredCp = 0;
  private sentSeq = 0;
  private sentCp = 0;
  private sentCpKeys = new Set<string>();
  private inflight: InFlight[] = [];
  private alerts: string[] = [];
  private downSince: number | null = null;
  private alerted = false;
  private lastError: string | null = null;
  private held = false;
  private renewedAt = 0;
  private readonly header: SyslogHeader;

  constructor(private readonly o: SyslogForwarderOptions) {
    this.header = { facility: o.cfg.facility, appName: o.cfg.appName, ...(o.hostname ? { hostname: o.hostname } : {}) };
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.loadCursors();
    this.rewind();
    this.stopping = false;
    this.running = this.loop();
  }

  /** A hint that records were appended. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Queues an alert message (already formatted) for the collector. */
  sendAlert(message: string): void {
    if (this.alerts.length >= 1000) this.alerts.shift();
    this.alerts.push(message);
    this.wake();
  }

  status(): ForwarderStatus {
    return {
      connected: this.conn !== null,
      leader: this.o.lease ? this.held : true,
      deliveredSeq: this.deliveredSeq,
      sentSeq: this.sentSeq,
      downSince: this.downSince,
      lastError: this.lastError,
    };
  }

  /**
   * Sends what is pending (within `graceMs`), closes the connection gracefully and persists the
   * cursor: everything when the collector closed cleanly, else only what was confirmed.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    const deadline = performance.now() + graceMs;
    this.stopping = true;
    this.wake();
    await this.running;
    this.running = null;
    const conn = this.conn;
    if (conn) {
      try {
        while (performance.now() < deadline && (await this.pump()));
      } catch {
        /* broken: unconfirmed records will be resent next time */
      }
      this.conn = null;
      conn.close();
      const left = Math.max(100, deadline - performance.now());
      const clean = await Promise.race([
        conn.closed,
        new Promise<string>((r) => setTimeout(() => r('timeout'), left).unref()),
      ]);
      await this.confirm(clean === undefined).catch((e: unknown) =>
        this.o.log.warn({ err: e }, 'could not persist the syslog cursor'),
      );
    }
    if (this.held) await this.o.lease?.release(LEASE).catch(() => undefined);
    this.held = false;
  }

  /** Takes or keeps the sending lease; on taking it, reloads the cursors another holder moved. */
  private async lead(): Promise<boolean> {
    const lease = this.o.lease;
    if (!lease) return true;
    const now = performance.now();
    if (this.held && now - this.renewedAt < lease.ttlMs / 3) return true;
    const ok = this.held ? await lease.renew(LEASE) : await lease.acquire(LEASE);
    if (ok && !this.held) {
      await this.loadCursors();
      this.rewind();
    }
    if (!ok && this.held) {
      this.o.log.warn('syslog sending lease lost; another process sends now');
      this.conn?.close();
      this.conn = null;
      this.rewind();
    }
    this.held = ok;
    if (ok) this.renewedAt = now;
    return ok;
  }

  private async loadCursors(): Promise<void> {
    const cur = await this.o.db
      .selectFrom('audit_cursors')
      .select(['sink', 'seq'])
      .where('sink', 'in', [EVENTS_CURSOR, CHECKPOINTS_CURSOR])
      .execute();
    for (const c of cur) {
      if (c.sink === EVENTS_CURSOR) this.deliveredSeq = Number(c.seq);
      else this.deliveredCp = Number(c.seq);
    }
  }

  private rewind(): void {
    this.sentSeq = this.deliveredSeq;
    this.sentCp = this.deliveredCp;
    this.sentCpKeys.clear();
    for (const f of this.inflight) this.alerts.unshift(...f.alerts);
    this.inflight = [];
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private broken(conn: SyslogConnection, e: unknown): void {
    if (this.conn !== conn) return;
    this.conn = null;
    conn.close();
    this.lastError = e instanceof Error ? ((e as NodeJS.ErrnoException).code ?? e.message) : String(e);
    this.o.log.warn(
      { error: this.lastError, deliveredSeq: this.deliveredSeq },
      'syslog connection lost; unconfirmed records will be resent',
    );
    this.rewind();
    this.downSince ??= this.o.clock.nowMs();
    this.wake();
  }

  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.stopping) {
      let leader = false;
      try {
        leader = await this.lead();
      } catch (e) {
        this.o.log.warn({ err: e }, 'syslog lease check failed');
      }
      if (!leader) {
        await this.sleep(Math.min(5000, (this.o.lease?.ttlMs ?? 15_000) / 3));
        continue;
      }
      if (!this.conn) {
        try {
          const conn = await (this.o.connect ?? ((cfg) => connectSyslog({ cfg })))(this.o.cfg);
          if (this.stopping) {
            conn.close();
            break;
          }
          this.conn = conn;
          void conn.closed.then((e) => this.broken(conn, e ?? new Error('closed')));
          backoff = 250;
          if (this.downSince !== null) {
            const downForMs = this.o.clock.nowMs() - this.downSince;
            this.o.log.info({ downForMs }, 'syslog collector reachable again');
            if (this.alerted) this.o.onUp?.({ downForMs });
          }
          this.downSince = null;
          this.alerted = false;
        } catch (e) {
          this.lastError = e instanceof Error ? e.message : String(e);
          this.downSince ??= this.o.clock.nowMs();
          await this.maybeAlert();
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 30_000);
          continue;
        }
      }
      const conn = this.conn;
      try {
        const more = await this.pump();
        // a cursor that cannot be saved (database read-only) is not a broken connection
        await this.confirm(false).catch((e: unknown) =>
          this.o.log.warn({ err: e }, 'could not persist the syslog cursor'),
        );
        if (!more && !this.stopping) await this.sleep(Math.min(this.o.pollMs ?? 1000, this.o.confirmMs ?? 2000));
      } catch (e) {
        if (conn) this.broken(conn, e);
      }
    }
  }

  private async maybeAlert(): Promise<void> {
    if (this.alerted || this.downSince === null) return;
    const downForMs = this.o.clock.nowMs() - this.downSince;
    if (downForMs < this.o.cfg.alertAfterMs) return;
    this.alerted = true;
    const head = await this.o.db
      .selectFrom('audit_head')
      .select('seq')
      .executeTakeFirst()
      .catch(() => undefined);
    const queued = head ? Math.max(0, Number(head.seq) - this.deliveredSeq) : 0;
    this.o.log.error(
      { downForMs, queued, error: this.lastError },
      'syslog collector unreachable; audit records are kept and will be sent when it is back',
    );
    try {
      this.o.onDown?.({ downForMs, error: this.lastError ?? 'unknown', queued });
    } catch (e) {
      this.o.log.error({ err: e }, 'onDown failed');
    }
  }

  /** Sends one batch; true when there may be more. */
  private async pump(): Promise<boolean> {
    const conn = this.conn;
    if (!conn) return false;
    const batch = this.o.batch ?? 500;
    const alerts = this.alerts.splice(0);
    const records = await readAfter(this.o.db, this.sentSeq, batch);
    const cps = (
      await this.o.db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('seq', '>=', this.sentCp)
        .orderBy('seq')
        .orderBy('kind')
        .limit(100)
        .execute()
    )
      .map((r) => rowToCheckpoint(r, this.o.applianceId))
      .filter((c) => !this.sentCpKeys.has(`${c.seq}:${c.kind}`));
    if (!alerts.length && !records.length && !cps.length) return false;
    const msgs = [
      ...alerts,
      ...records.map((r) => recordMessage(this.header, r)),
      ...cps.map((c) => checkpointMessage(this.header, c)),
    ];
    try {
      await conn.send(msgs);
    } catch (e) {
      this.alerts.unshift(...alerts);
      throw e;
    }
    const f: InFlight = { t: performance.now(), evSeq: this.sentSeq, cpSeq: this.sentCp, alerts };
    if (records.length) this.sentSeq = f.evSeq = records[records.length - 1]!.seq;
    for (const c of cps) {
      if (c.seq > this.sentCp) {
        this.sentCp = c.seq;
        this.sentCpKeys.clear();
      }
      this.sentCpKeys.add(`${c.seq}:${c.kind}`);
    }
    f.cpSeq = this.sentCp;
    this.inflight.push(f);
    return records.length === batch || cps.length === 100;
  }

  /** Persists the cursors of what stayed up long enough (or everything, on a clean stop). */
  private async confirm(all: boolean): Promise<void> {
    const limit = performance.now() - (this.o.confirmMs ?? 2000);
    let ev = this.deliveredSeq;
    let cp = this.deliveredCp;
    let n = 0;
    for (const f of this.inflight) {
      if (!all && f.t > limit) break;
      ev = Math.max(ev, f.evSeq);
      cp = Math.max(cp, f.cpSeq);
      n += 1;
    }
    if (n === 0) return;
    this.inflight.splice(0, n);
    const now = this.o.clock.nowMs();
    const upsert = (sink: string, seq: number) =>
      this.o.db
        .insertInto('audit_cursors')
        .values({ sink, seq, updated_at: now })
        .onConflict((oc) => oc.column('sink').doUpdateSet({ seq, updated_at: now }))
        .execute();
    if (ev !== this.deliveredSeq) await upsert(EVENTS_CURSOR, ev);
    if (cp !== this.deliveredCp) await upsert(CHECKPOINTS_CURSOR, cp);
    this.deliveredSeq = ev;
    this.deliveredCp = cp;
  }
}
