import { sql, type Kysely } from 'kysely';
import { readSecretFile } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Alert } from '../monitoring/types.js';
import { Leases, makeHolderId } from '../jobs/leases.js';
import { isAppError } from '../shared/errors.js';
import { specOf, type TargetInfo } from './catalogue.js';
import { backupErrors, BackupError } from './errors.js';
import { MARKER } from './format.js';
import { checkTargetSite, type GeoVerdict } from './geo.js';
import { openTarget, targetOptions, targetRef, type TargetRef } from './registry.js';
import type { BackupTarget } from './targets/types.js';
import { streamText, type BackupDeps } from './types.js';

const LOCK = 'backup.targets';
export const HOUR = 3_600_000;

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
  get db(): Kysely<Database> {
    return this.d.db.db;
  }
  get scratch(): string {
    return this.cfg.scratchDir;
  }
  now(): number {
    return this.d.clock.nowMs();
  }

  geoCheck(t: { jurisdiction: string; lat: number; lon: number }): GeoVerdict {
    return checkTargetSite(this.d.config.site, t, { minDistanceKm: this.cfg.minDistanceKm, allowedJurisdictions: this.cfg.allowedJurisdictions });
  }

  /** Opens a registered target with the configured retries and bandwidth limit. */
  open(t: TargetFields, signal?: AbortSignal): BackupTarget {
    const o = targetOptions(this.cfg);
    return openTarget(specOf(t as TargetInfo), {
      ...o,
      readSecret: (f, what) => readSecretFile(f, what),
      retry: {
        retries: this.cfg.retries,
        baseMs: this.cfg.retryBaseMs,
        ...(signal ? { signal } : {}),
        onRetry: (i) => this.d.log.warn({ op: i.op, attempt: i.attempt, delayMs: i.delayMs, err: i.error.message }, 'backup target: retrying'),
      },
    });
  }

  /** How the backup engine's worker reaches a target: the same options as `open`. */
  targetRef(info: TargetFields): TargetRef {
    return targetRef(specOf(info as TargetInfo), targetOptions(this.cfg), (f, what) => readSecretFile(f, what));
  }

  /** Checks that the target directory holds this appliance's marker. */
  async checkMarker(t: BackupTarget): Promise<void> {
    let text: string;
    try {
      text = await streamText(await t.get(MARKER));
    } catch (e) {
      if (isAppError(e) && e.code === 'TARGET_NOT_FOUND') {
        throw backupErrors.unreachable(t.display, `the marker ${MARKER} is missing: wrong directory, or the volume is not mounted`);
      }
      throw e;
    }
    const m = JSON.parse(text || '{}') as { applianceId?: string };
    if (m.applianceId !== this.d.config.applianceId) throw backupErrors.refused(`${t.display} holds the backups of another appliance`);
  }

  /** A shredded key must not linger in the write-ahead log (secure_delete covers the main file). */
  async truncateWal(): Promise<void> {
    if (this.d.db.dialect === 'sqlite') await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(this.db).catch(() => undefined);
  }

  async alert(a: Alert): Promise<void> {
    await this.d.alerts.raise(a).catch((e: unknown) => this.d.log.error({ err: e, alert: a.kind }, 'alert could not be recorded'));
  }

  /** One operation on targets at a time, across processes (database lease, renewed while held). */
  async withLock<T>(wait: boolean, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 6 * HOUR;
    while (!(await this.leases.acquire(LOCK))) {
      if (!wait || Date.now() > deadline) throw new BackupError('BACKUP_BUSY', 'another backup operation is running', { httpStatus: 409, hint: 'try again when it ends (see `coffre backup list`)' });
      await new Promise((r) => setTimeout(r, 2000));
    }
    const renew = setInterval(() => void this.leases.renew(LOCK), Math.max(1000, Math.floor(this.d.config.leaseTtlMs / 3)));
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.leases.release(LOCK).catch(() => undefined);
    }
  }
}
