import type { Kysely } from 'kysely';
import type { AuditSchema, SharedDb } from '../db/index.js';
import type { KeyProvider } from '../keys/types.js';
import type { AuditConfig } from '../config/sections/audit.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Alert } from '../monitoring/types.js';
import { AppError, isAppError } from '../shared/errors.js';
import type { AuditEvent, AuditStamp, Auditor } from './types.js';
import { DbAuditor } from './db/auditor.js';
import { readHead } from './db/rows.js';
import { Checkpointer, checkpointTickMs } from './checkpointer.js';
import { exportCheckpoint, type Checkpoint } from './checkpoint-format.js';
import { SyslogForwarder } from './syslog/forwarder.js';
import { verifyTrail, type VerifyReport } from './verify.js';
import { readAnchor } from './anchor.js';
import { queryEvents, type AuditFilter, type AuditPage } from './query.js';
import { exportJsonLines, type ExportRange, type ExportSummary } from './export.js';
import { pruneTrail, type PruneResult } from './prune.js';
import { DailySeals, type SealResult } from './daily-seal.js';
import type { Sealer, Timestamper } from '../seals/index.js';
import type { JobDefinition } from '../jobs/types.js';
import { Leases, makeHolderId } from '../jobs/index.js';

export interface AuditServiceOptions {
  db: Kysely<AuditSchema>;
  keys: KeyProvider;
  clock: Clock;
  log: Logger;
  applianceId: string;
  config: AuditConfig;
  /** raises an alert (late-bound: the alerter itself records through this service) */
  raise?: (a: Alert) => Promise<void>;
  hostname?: string;
  /** lease TTL for the single syslog sender across processes (jobs.leaseTtlMs) */
  leaseTtlMs?: number;
  /** where the latest checkpoint is also kept, outside the database (src/audit/anchor.ts) */
  anchorFile?: string;
  /** the sealing key: signs checkpoints and the daily seals (src/seals) */
  sealer?: Sealer;
  /** RFC 3161 timestamps of the daily seals */
  timestamper?: Timestamper;
}

/** verify's allowance, beyond the cadence, for a slow HSM call and a loaded host */
const CADENCE_GRACE_MS = 30_000;

/**
 * The audit module as the appliance sees it (`appliance.audit`): the Auditor other modules record
 * through, plus checkpoints, verification, the checkpoints that backups carry, and the real-time
 * syslog export (started by `serve`).
 */
export class AuditService implements Auditor {
  readonly auditor: DbAuditor;
  readonly checkpointer: Checkpointer;
  readonly forwarder: SyslogForwarder | undefined;
  /** the daily log seals (when a sealer is given) */
  readonly seals: DailySeals | undefined;

  constructor(private readonly o: AuditServiceOptions) {
    const log = o.log.child({ module: 'audit' });
    const raise = (a: Alert) =>
      void (o.raise?.(a) ?? Promise.resolve()).catch((e: unknown) => log.error({ err: e }, 'alert failed'));
    this.auditor = new DbAuditor({ db: o.db, clock: o.clock, log });
    this.forwarder = o.config.syslog.enabled
      ? new SyslogForwarder({
          db: o.db,
          cfg: o.config.syslog,
          applianceId: o.applianceId,
          clock: o.clock,
          log,
          ...(o.hostname ? { hostname: o.hostname } : {}),
          lease: Object.assign(new Leases(o.db, o.clock, makeHolderId(), o.leaseTtlMs ?? 120_000), {
            ttlMs: o.leaseTtlMs ?? 120_000,
          }),
          onDown: ({ downForMs, error, queued }) =>
            raise({
              kind: 'audit.syslog_down',
              severity: 'critical',
              message: `syslog collector unreachable for ${Math.round(downForMs / 1000)} s (${error}); ${queued} audit record(s) wait in the database and will be sent when it is back`,
            }),
          onUp: ({ downForMs }) =>
            raise({
              kind: 'audit.syslog_up',
              severity: 'info',
              message: `syslog collector reachable again after ${Math.round(downForMs / 1000)} s; queued audit records are being sent`,
            }),
        })
      : undefined;
    this.checkpointer = new Checkpointer({
      db: o.db,
      keys: o.keys,
      clock: o.clock,
      log,
      applianceId: o.applianceId,
      every: o.config.checkpointEvery,
      intervalMs: o.config.checkpointIntervalMs,
      ...(o.anchorFile ? { anchorFile: o.anchorFile } : {}),
      ...(o.sealer ? { sign: (d: Buffer) => o.sealer!.sign(d) } : {}),
      onCheckpoint: () => this.forwarder?.wake(),
      onFailure: (e) => {
        // chained, so `verify` knows why the stretch it closes is longer than the cadence
        void this.auditor
          .recordNow({
            action: 'audit.checkpoint',
            actor: 'system',
            outcome: 'failure',
            reason: isAppError(e) && /^[A-Z][A-Z0-9_]{0,63}$/.test(e.code) ? e.code : 'ERROR',
          })
          .catch((err: unknown) => log.error({ err }, 'the checkpoint failure could not be recorded'));
        raise({
          kind: 'audit.checkpoint_failed',
          severity: 'critical',
          message: `audit checkpoints cannot be MACed in the HSM (${isAppError(e) ? e.code : 'error'}); records are still written and chained`,
        });
      },
    });
    this.seals = o.sealer
      ? new DailySeals({
          db: o.db,
          sealer: o.sealer,
          clock: o.clock,
          applianceId: o.applianceId,
          ...(o.timestamper ? { timestamper: o.timestamper } : {}),
        })
      : undefined;
    this.auditor.onAppended((seq) => {
      this.checkpointer.hint(seq);
      this.forwarder?.wake();
    });
  }

  record(trx: SharedDb, e: AuditEvent): Promise<AuditStamp> {
    return this.auditor.record(trx, e);
  }

  recordNow(e: AuditEvent): Promise<void> {
    return this.auditor.recordNow(e);
  }

  /**
   * Starts periodic checkpoints (every process that writes records). First checkpoints a tail a
   * process that died left uncovered, so this process's records open a new stretch (verify holds
   * each stretch to the cadence); an HSM that cannot MAC now does not stop the start.
   */
  async start(): Promise<void> {
    await this.checkpointer.maybe().catch(() => undefined);
    this.checkpointer.start();
  }

  /** Starts the real-time syslog export (the serving process). */
  async startExport(): Promise<void> {
    await this.forwarder?.start();
  }

  /** Recomputes the chain and checks every checkpoint's MAC in the HSM and the anchors given. */
  verify(anchors: readonly Checkpoint[] = []): Promise<VerifyReport> {
    const file = this.o.anchorFile ? readAnchor(this.o.anchorFile) : undefined;
    const cadence = {
      every: this.o.config.checkpointEvery,
      intervalMs: this.o.config.checkpointIntervalMs,
      tickMs: checkpointTickMs(this.o.config.checkpointIntervalMs),
      graceMs: CADENCE_GRACE_MS,
    };
    return verifyTrail({
      db: this.o.db,
      applianceId: this.o.applianceId,
      keys: this.o.keys,
      cadence,
      anchors: typeof file === 'object' ? [...anchors, file] : anchors,
      ...(file === 'unreadable' ? { anchorUnreadable: true } : {}),
    });
  }

  /** The auditor's query (newest first, keyset pagination). The caller records the read. */
  query(f: AuditFilter, page: { limit: number; cursor?: string | undefined }): Promise<AuditPage> {
    return queryEvents(this.o.db, f, page);
  }

  /** JSON-lines export of [from, to) (docs/formats.md "Audit export"). The caller records the read. */
  export(range: ExportRange, write: (line: string) => Promise<void> | void): Promise<ExportSummary> {
    return exportJsonLines(this.o.db, this.o.applianceId, range, write);
  }

  /** Retention (audit.retentionDays): see pruneTrail. */
  prune(actor: string): Promise<PruneResult> {
    return pruneTrail({
      db: this.o.db,
      keys: this.o.keys,
      clock: this.o.clock,
      auditor: this.auditor,
      applianceId: this.o.applianceId,
      retentionDays: this.o.config.retentionDays,
      actor,
    });
  }

  /** The daily retention job (`audit.prune`, 03:30 in the appliance time zone, caught up at start). */
  pruneJob(): JobDefinition<PruneResult> {
    return {
      name: 'audit.prune',
      schedule: '30 3 * * *',
      catchUp: true,
      run: async (ctx) => {
        try {
          const r = await this.prune(ctx.actor);
          ctx.log.info({ prunedUpTo: r.prunedUpTo, deleted: r.deleted }, 'audit retention applied');
          return r;
        } catch (e) {
          if (isAppError(e) && e.code === 'AUDIT_TAMPERED') {
            void this.o
              .raise?.({ kind: 'audit.tampered', severity: 'critical', message: e.message })
              .catch(() => undefined);
          }
          throw e;
        }
      },
    };
  }

  /** The daily log seal (`audit.seal`, 00:10 in the appliance time zone, caught up at start): seals every complete UTC day not sealed yet. */
  sealJob(): JobDefinition<SealResult> {
    return {
      name: 'audit.seal',
      schedule: '10 0 * * *',
      catchUp: true,
      run: async (ctx) => {
        if (!this.seals)
          throw new AppError('SEALS_UNAVAILABLE', 'this process has no sealing key', { httpStatus: 503 });
        try {
          const r = await this.seals.sealDue();
          if (r.sealed.length)
            await this.auditor.recordNow({
              action: 'audit.seal',
              actor: ctx.actor,
              outcome: 'success',
              targets: { day: r.sealed.at(-1)!, days: String(r.sealed.length) },
            });
          ctx.log.info({ sealed: r.sealed.length, latest: r.latest }, 'audit trail sealed');
          return r;
        } catch (e) {
          if (isAppError(e) && e.code === 'AUDIT_TAMPERED') {
            void this.o
              .raise?.({ kind: 'audit.tampered', severity: 'critical', message: e.message })
              .catch(() => undefined);
          }
          throw e;
        }
      },
    };
  }

  /**
   * For backups: MACs the current head (when records were written since the last checkpoint) and
   * returns the latest checkpoints in their exported form, newest first. Stored next to a backup,
   * they let `coffre audit verify --checkpoint FILE` detect a trail cut back after that backup.
   */
  async exportCheckpoints(n = 10): Promise<Record<string, unknown>[]> {
    const head = await readHead(this.o.db);
    const [latest] = await this.checkpointer.latest(1);
    if (head && head.seq > 0 && (!latest || latest.seq < head.seq)) await this.checkpointer.checkpoint('manual');
    return (await this.checkpointer.latest(n)).map(exportCheckpoint);
  }

  /** Refuses new records, writes what is queued, MACs the head, sends what is pending. */
  async close(): Promise<void> {
    await this.auditor.close();
    await this.checkpointer.stop();
    await this.forwarder?.stop();
  }
}
