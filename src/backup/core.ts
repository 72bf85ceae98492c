import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { readSecretFile } from '../config/index.js';
import type { BackupSchema } from '../db/index.js';
import type { Alert } from '../monitoring/types.js';
import { describeHolder, Leases, makeHolderId, type LeaseHolder } from '../jobs/index.js';
import { specOf, type TargetInfo } from './catalogue.js';
import { backupErrors, BackupError } from './errors.js';
import { MARKER, sessionKeyName } from './format.js';
import { checkTargetSite, type GeoVerdict } from './geo.js';
import { openTarget, targetOptions, targetRef, type TargetRef } from './registry.js';
import type { BackupTarget } from './targets/types.js';
import { describeMarker, markerRefused, newMarker, readMarker, writeMarker } from './marker.js';
import { openSidecar, readSidecar } from './reader.js';
import type { BackupDeps } from './types.js';

const LOCK = 'backup.targets';
export const HOUR = 3_600_000;
/** the jobs whose runs hold the lock (./jobs.ts) */
const LOCK_JOBS = ['backup', 'backup.verify', 'backup.drill', 'backup.watchdog'];
/** what backup operations write in scratch space: database snapshots, decrypted verify copies, drill restores */
const SCRATCH = /^(snapshot|verify|drill)-[0-9a-f]{8}(\.db(-wal|-shm|-journal)?)?$/;

type TargetFields = Pick<TargetInfo, 'type' | 'url' | 'hostKey' | 'identityFile' | 'passwordFile'>;

/**
 * What the backup module's parts share (./targets-admin.ts, ./escrow.ts, ./runs.ts, ./verify.ts,
 * ./drill.ts, ./shred.ts, ./watchdog.ts): the dependencies, opening targets with the configured
 * options, the one-operation-at-a-time lease, alerts.
 */
export class BackupCore {
  private readonly leases: Leases;
  constructor(readonly d: BackupDeps) {
    this.leases = new Leases(d.db.db, d.clock, makeHolderId(), d.config.leaseTtlMs);
  }

  get cfg() {
    return this.d.config.backup;
  }
  get db(): Kysely<BackupSchema> {
    return this.d.db.db;
  }
  get scratch(): string {
    return this.cfg.scratchDir;
  }
  now(): number {
    return this.d.clock.nowMs();
  }

  geoCheck(t: { jurisdiction: string; lat: number; lon: number }): GeoVerdict {
    return checkTargetSite(this.d.config.site, t, {
      minDistanceKm: this.cfg.minDistanceKm,
      allowedJurisdictions: this.cfg.allowedJurisdictions,
    });
  }

  /** Opens a registered target with the configured retries and bandwidth limit. */
  /** Opens a target with the configured options; `retries: 0` fails at the first error (registration: the operator waits). */
  open(t: TargetFields, signal?: AbortSignal, retries = this.cfg.retries): BackupTarget {
    const o = targetOptions(this.cfg);
    return openTarget(specOf(t as TargetInfo), {
      ...o,
      readSecret: (f, what) => readSecretFile(f, what),
      retry: {
        retries,
        baseMs: this.cfg.retryBaseMs,
        ...(signal ? { signal } : {}),
        onRetry: (i) =>
          this.d.log.warn(
            { op: i.op, attempt: i.attempt, delayMs: i.delayMs, err: i.error.message },
            'backup target: retrying',
          ),
      },
    });
  }

  /** How the backup engine's worker reaches a target: the same options as `open`. */
  targetRef(info: TargetFields): TargetRef {
    return targetRef(specOf(info as TargetInfo), targetOptions(this.cfg), (f, what) => readSecretFile(f, what));
  }

  /**
   * Checks the marker of registered target `target` before anything is written or deleted there.
   * Missing: TARGET_UNREACHABLE (wrong directory, or an unmounted volume). Not this appliance's
   * HSM-MACed claim: this appliance wrote a MACed marker when it registered the target, and a
   * genuine appliance never overwrites one, so it was forged or replaced. If the directory still
   * holds this appliance's backups (sidecars verified by the HSM), the marker is written again and
   * work goes on (a forgery does not stop backups); otherwise nothing is done there. Either way the
   * alert says which case it was.
   */
  async checkMarker(t: BackupTarget, target: string): Promise<void> {
    const applianceId = this.d.config.applianceId;
    const v = await readMarker(t, this.d.keys, applianceId);
    if (v.kind === 'missing')
      throw backupErrors.unreachable(
        t.display,
        `the marker ${MARKER} is missing: wrong directory, or the volume is not mounted`,
      );
    if (v.kind === 'ours' && v.marker.target === target) return;
    const what =
      v.kind === 'ours'
        ? `${t.display} is marked as target ${v.marker.target}, not ${target}`
        : describeMarker(v, t.display);
    if (v.kind !== 'claim' && (await this.holdsOurBackups(t, target))) {
      await writeMarker(
        t,
        await newMarker(this.d.keys, { applianceId, target, createdAt: new Date(this.now()).toISOString() }),
      );
      await this.alert({
        kind: 'backup.marker-forged',
        severity: 'critical',
        message: `${what}; the directory holds this appliance's backups (sidecars verified by its HSM): the marker was written again and backups go on`,
        targets: { target },
      });
      return;
    }
    await this.alert({
      kind: v.kind === 'claim' ? 'backup.target-claimed' : 'backup.marker-forged',
      severity: 'critical',
      message: `${what}; nothing was written or deleted there`,
      targets: { target },
    });
    throw v.kind === 'ours' ? backupErrors.refused(what) : markerRefused(v, t.display);
  }

  /** Whether the target holds a complete backup of this appliance that the catalogue knows (its sidecar's HSM MAC checked). */
  private async holdsOurBackups(t: BackupTarget, target: string): Promise<boolean> {
    const known = new Set(
      (
        await this.db
          .selectFrom('backups')
          .select('id')
          .where('target', '=', target)
          .where('state', '=', 'complete')
          .execute()
      ).map((r) => r.id),
    );
    const found = (await t.list('')).filter((e) => e.type === 'dir' && known.has(e.name)).map((e) => e.name);
    for (const id of found.sort().reverse().slice(0, 1)) {
      try {
        const { sidecar } = await readSidecar(t, id, id);
        (await openSidecar(this.d.keys, sidecar, { backupId: id, applianceId: this.d.config.applianceId }, id)).fill(0);
        return true;
      } catch (e) {
        this.d.log.warn({ err: e, backup: id, target }, 'a backup at the target does not verify');
      }
    }
    return false;
  }

  /**
   * Crypto-shredding of one backup: its own HSM key object is destroyed (format 2; a format-1
   * backup's key was wrapped under the KEK and only its catalogue copy can be dropped).
   * Idempotent. Throws when the HSM cannot be reached: the caller keeps the backup pending.
   */
  async shredKey(id: string): Promise<void> {
    await this.d.keys.destroyMacKey(sessionKeyName(id));
  }

  /** A shredded key must not linger in the write-ahead log (secure_delete covers the main file). */
  async truncateWal(): Promise<void> {
    if (this.d.db.dialect === 'sqlite')
      await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(this.db).catch(() => undefined);
  }

  async alert(a: Alert): Promise<void> {
    await this.d.alerts
      .raise(a)
      .catch((e: unknown) => this.d.log.error({ err: e, alert: a.kind }, 'alert could not be recorded'));
  }

  /**
   * One operation on targets at a time, across processes and within one (database lease, renewed
   * while held; a lease left by a process of this host that is gone is taken over at once).
   * Under it, scratch copies a killed operation left are swept first.
   */
  async withLock<T>(wait: boolean, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 6 * HOUR;
    for (;;) {
      const got = await this.leases.take(LOCK);
      if (got.ok) {
        if (got.tookOver)
          this.d.log.warn(
            { holder: got.tookOver.holder },
            `backup: took over the lease of ${describeHolder(got.tookOver)}, which is no longer running`,
          );
        break;
      }
      if (!wait || Date.now() > deadline) throw await this.busy(got.holder);
      await new Promise((r) => setTimeout(r, 2000));
    }
    const renew = setInterval(
      () => void this.leases.renew(LOCK).catch((e: unknown) => this.d.log.warn({ err: e }, 'backup lease not renewed')),
      Math.max(1000, Math.floor(this.d.config.leaseTtlMs / 3)),
    );
    renew.unref();
    try {
      this.sweepScratch();
      return await fn();
    } finally {
      clearInterval(renew);
      await this.leases.release(LOCK).catch(() => undefined);
    }
  }

  /** BACKUP_BUSY, naming the operation that holds the lock (details: its job run's id, when it is one). */
  private async busy(holder: LeaseHolder | null): Promise<BackupError> {
    const run = holder
      ? // the oldest running run of a backup job whose lease is held and that started before the lock was taken (not the caller's own run)
        await this.db
          .selectFrom('job_runs')
          .select(['id', 'job', 'started_at'])
          .where('job', 'in', LOCK_JOBS)
          .where('job', 'in', (eb) => eb.selectFrom('job_leases').select('name'))
          .where('outcome', '=', 'running')
          .where('started_at', '<=', holder.acquiredAt)
          .orderBy('id', 'asc')
          .executeTakeFirst()
      : undefined;
    const what = [
      run ? `${run.job} run #${run.id}, started ${new Date(Number(run.started_at)).toISOString()}` : '',
      holder ? describeHolder(holder) : '',
    ]
      .filter(Boolean)
      .join(', ');
    return new BackupError('BACKUP_BUSY', `another backup operation is running${what ? ` (${what})` : ''}`, {
      httpStatus: 409,
      hint: 'try again when it ends (see `coffre backup list`)',
      details: { runId: run ? Number(run.id) : null, ...(holder ? { host: holder.host, pid: holder.pid } : {}) },
    });
  }

  /** Removes scratch copies (snapshots, decrypted verify copies, drill restores) a killed operation left. Only under the lock. */
  private sweepScratch(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.scratch);
    } catch {
      return;
    }
    const left = names.filter((n) => SCRATCH.test(n));
    for (const n of left) fs.rmSync(path.join(this.scratch, n), { recursive: true, force: true });
    if (left.length)
      this.d.log.warn(
        { removed: left.length, dir: this.scratch },
        'backup: removed scratch copies an interrupted operation left',
      );
  }
}
