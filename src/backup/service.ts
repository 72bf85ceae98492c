import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Config } from '../config/index.js';
import { readSecretFile } from '../config/index.js';
import type { Database, DatabaseHandle } from '../db/index.js';
import type { Auditor } from '../audit/types.js';
import type { Alerter, Alert } from '../monitoring/types.js';
import type { KeyProvider } from '../keys/types.js';
import type { BlobStore } from '../storage/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { JobProgress } from '../jobs/types.js';
import { Leases, makeHolderId } from '../jobs/leases.js';
import { isAppError } from '../shared/errors.js';
import { exportCheckpoint } from '../audit/index.js';
import {
  backupFromRow,
  decodeWrapped,
  encodeWrapped,
  getBackupRow,
  getTarget,
  insertTarget,
  listBackups,
  listEscrow,
  listTargets,
  recordCheck,
  specOf,
  type BackupInfo,
  type TargetInfo,
} from './catalogue.js';
import { backupErrors, BackupError } from './errors.js';
import {
  AUDIT_MEMBER,
  BLOB_PREFIX,
  CONFIG_MEMBER,
  DB_MEMBER,
  FORMAT,
  isBackupId,
  backupIdTime,
  MARKER,
  newBackupId,
  SIDECAR,
  SIDECAR_MAC_KEY,
  sidecarMacInput,
  TMP_PREFIX,
  wrappedToJson,
  type Manifest,
  type Sidecar,
} from './format.js';
import { checkTargetSite, siteProblems, type GeoVerdict } from './geo.js';
import { runEngine, type MemberSource, type TargetRef } from './engine/index.js';
import { openSidecar, readSidecar } from './reader.js';
import { normaliseTargetUrl, openTarget } from './registry.js';
import { maxAgeMs, planRetention, weekdaySlot, type HeldBackup } from './retention.js';
import { integrityProblems, openSnapshot, schemaVersion, snapshotDatabase } from './snapshot.js';
import { restoreInto, sampleDocuments } from './restore.js';
import { parseHostKey, probeHostKey } from './targets/sftp.js';
import type { BackupTarget } from './targets/types.js';

/** What the backup module needs from the appliance (wired in main.ts). */
export interface BackupDeps {
  db: DatabaseHandle;
  config: Config;
  /** the customer's HSM: wraps session keys, MACs sidecars */
  keys: KeyProvider;
  /** the raw blob store (encrypted blobs as stored, not the decrypting wrapper) */
  blobs: BlobStore;
  /** the blob ids a (snapshot) database references: the vault's `referencedBlobIds` */
  blobRefs: (snapshot: Kysely<Database>) => AsyncIterable<string>;
  audit: Auditor;
  /**
   * The audit module's `exportCheckpoints()`: MACs the trail's head in the HSM when records were
   * written since the last checkpoint. Called before each snapshot, so every backup carries a
   * checkpoint of its own trail (fail closed: no checkpoint, no backup).
   */
  exportAuditCheckpoints: () => Promise<unknown>;
  alerts: Alerter;
  clock: Clock;
  log: Logger;
}

export type Progress = (p: JobProgress) => void;

export interface AddTargetInput {
  name: string;
  type: 'sftp' | 'path';
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  hostKey?: string | undefined;
  identityFile?: string | undefined;
  passwordFile?: string | undefined;
}

export interface TargetRunReport {
  target: string;
  ok: boolean;
  backupId?: string;
  error?: string;
  code?: string;
  plainSize?: number;
  size?: number;
  parts?: number;
  members?: number;
  durationMs?: number;
  uploadMs?: number;
  verifyMs?: number;
  deleted: { id: string; reason: string }[];
}

export interface RunReport {
  ok: boolean;
  targets: TargetRunReport[];
}

type RunOptions = { actor: string; progress?: Progress; signal?: AbortSignal };
/** what a run has created so far, so a failure can undo it */
type InFlight = { id: string | null; tmp: string | null };
type Written = { id: string; createdAt: number; slot: number; plainSize: number; size: number; parts: number; members: number; uploadMs: number; verifyMs: number };

const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const LOCK = 'backup.targets';
const HOUR = 3_600_000;

/**
 * The backup module's service: targets, escrow keys, runs (snapshot → archive → encrypt → upload
 * → verify → rename → retention), verification, the dead-man watchdog. Restore and the restore
 * drill are in ./restore.ts. One operation on targets at a time across processes (database lease).
 */
export class BackupService {
  private readonly leases: Leases;
  constructor(readonly d: BackupDeps) {
    this.leases = new Leases(d.db.db, d.clock, makeHolderId(), d.config.jobs.leaseTtlMs);
  }

  private get cfg() {
    return this.d.config.backup;
  }
  private get db(): Kysely<Database> {
    return this.d.db.db;
  }
  private get scratch(): string {
    return this.cfg.scratchDir;
  }

  // ------------------------------------------------------------------ targets

  geoCheck(t: { jurisdiction: string; lat: number; lon: number }): GeoVerdict {
    return checkTargetSite(this.d.config.site, t, { minDistanceKm: this.cfg.minDistanceKm, allowedJurisdictions: this.cfg.allowedJurisdictions });
  }

  /** Opens a registered target with the configured retries and bandwidth limit. */
  open(t: Pick<TargetInfo, 'type' | 'url' | 'hostKey' | 'identityFile' | 'passwordFile'>, signal?: AbortSignal): BackupTarget {
    return openTarget(specOf(t as TargetInfo), {
      readSecret: (f, what) => readSecretFile(f, what),
      connectTimeoutMs: this.cfg.connectTimeoutMs,
      ...(this.cfg.bandwidthLimitKiBps ? { bandwidthLimitBytesPerSec: this.cfg.bandwidthLimitKiBps * 1024 } : {}),
      retry: {
        retries: this.cfg.retries,
        baseMs: this.cfg.retryBaseMs,
        ...(signal ? { signal } : {}),
        onRetry: (i) => this.d.log.warn({ op: i.op, attempt: i.attempt, delayMs: i.delayMs, err: i.error.message }, 'backup target: retrying'),
      },
    });
  }

  /**
   * Registers a target. Refused (exit 2, nothing stored) when its declared site breaks the policy,
   * its URL is malformed, an SFTP target has no pinned host key, or its directory belongs to
   * another appliance. The target is reached once: authentication, the host key, and the
   * directory's marker are checked before the row is written.
   */
  async addTarget(i: AddTargetInput, actor: string): Promise<TargetInfo & { distanceKm: number }> {
    if (!TARGET_NAME.test(i.name)) throw backupErrors.usage(`target name ${JSON.stringify(i.name)} must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)`);
    const site = { jurisdiction: i.jurisdiction.toUpperCase(), lat: i.lat, lon: i.lon };
    const sp = siteProblems(site);
    if (sp.length) throw backupErrors.usage(`target site: ${sp.join('; ')}`);
    const verdict = this.geoCheck(site);
    if (!verdict.ok) {
      await this.d.audit.recordNow({ action: 'backup.target.add', actor, outcome: 'denied', reason: 'SITE_POLICY', targets: { target: i.name } });
      throw backupErrors.refused(`target ${i.name} refused: ${verdict.problems.join('; ')}`, 'declare a target in the same jurisdiction and far enough away (backup.minDistanceKm, backup.allowedJurisdictions)');
    }
    if (await getTarget(this.db, i.name)) throw backupErrors.usage(`a target named ${i.name} exists`, 'remove it first or choose another name');
    const url = normaliseTargetUrl(i.type, i.url);
    let hostKey: string | null = null;
    if (i.type === 'sftp') {
      if (!i.hostKey) {
        const presented = await probeHostKey(url, this.cfg.connectTimeoutMs).catch(() => null);
        throw backupErrors.usage(
          'an SFTP target needs --host-key: the server key is pinned, never trusted on first use',
          presented ? `the server at ${url} presents ${presented}; check it out of band (ssh-keygen -lf on the target) and pass --host-key ${presented}` : 'get it at the target with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`',
        );
      }
      hostKey = parseHostKey(i.hostKey);
      if (!i.identityFile && !i.passwordFile) throw backupErrors.usage('an SFTP target needs --identity FILE (a private key) or a password file');
    } else if (i.hostKey || i.identityFile || i.passwordFile) {
      throw backupErrors.usage('--host-key and --identity are for SFTP targets only');
    }
    const info: TargetInfo = {
      name: i.name,
      type: i.type,
      url,
      jurisdiction: site.jurisdiction,
      lat: site.lat,
      lon: site.lon,
      hostKey,
      identityFile: i.identityFile ? path.resolve(i.identityFile) : null,
      passwordFile: i.passwordFile ? path.resolve(i.passwordFile) : null,
      createdAt: this.d.clock.nowMs(),
      createdBy: actor,
    };
    const t = this.open(info);
    try {
      await this.claim(t, i.name);
    } finally {
      await t.close();
    }
    await this.db.transaction().execute(async (trx) => {
      await this.d.audit.record(trx, { action: 'backup.target.add', actor, outcome: 'success', targets: { target: i.name } });
      await insertTarget(trx, info);
    });
    return { ...info, distanceKm: verdict.distanceKm };
  }

  /** Writes or checks the marker that ties a target directory to this appliance. */
  private async claim(t: BackupTarget, name: string): Promise<void> {
    const mine = this.d.config.applianceId;
    const entries = await t.list('');
    if (entries.some((e) => e.name === MARKER)) {
      const m = JSON.parse((await streamText(await t.get(MARKER))) || '{}') as { applianceId?: string };
      if (m.applianceId !== mine) throw backupErrors.refused(`${t.display} holds the backups of another appliance (${m.applianceId ?? 'unknown'})`, 'give each appliance its own directory');
      return;
    }
    await t.put(MARKER, Buffer.from(JSON.stringify({ format: FORMAT, applianceId: mine, target: name, createdAt: new Date(this.d.clock.nowMs()).toISOString() }) + '\n'));
  }

  private async checkMarker(t: BackupTarget): Promise<void> {
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

  listTargets(): Promise<TargetInfo[]> {
    return listTargets(this.db);
  }

  /**
   * Removes a target after destroying every backup of this appliance at it (keys shredded, files
   * deleted, deletion checked): data is never left where Coffre no longer manages it.
   */
  async removeTarget(name: string, actor: string): Promise<{ deleted: string[] }> {
    const info = await getTarget(this.db, name);
    if (!info) throw backupErrors.usage(`no target named ${name}`, 'see `coffre backup target list`');
    return this.withLock(false, async () => {
      const t = this.open(info);
      const deleted: string[] = [];
      try {
        await this.checkMarker(t);
        await this.adopt(t, info.name);
        for (const b of await listBackups(this.db, { target: name })) {
          await this.destroy(t, info.name, b.id, 'target-removed', actor);
          deleted.push(b.id);
        }
        await this.cleanTemp(t, name, actor);
        await t.remove(MARKER);
      } finally {
        await t.close();
      }
      await this.db.transaction().execute(async (trx) => {
        await this.d.audit.record(trx, { action: 'backup.target.remove', actor, outcome: 'success', targets: { target: name } });
        await trx.deleteFrom('backup_targets').where('name', '=', name).execute();
      });
      return { deleted };
    });
  }

  // ------------------------------------------------------------------ escrow keys

  /**
   * Registers an escrow key (CLI `backup escrow add`, API `POST /backup/escrow`). Refused, with
   * nothing stored and the refusal audited (fingerprint only, never the key text): a key GnuPG 2.2
   * could not read (ESCROW_KEY_REFUSED, 400) or one already registered (ESCROW_KEY_EXISTS, 409).
   */
  async addEscrow(keyText: string | Uint8Array, actor: string) {
    const { checkEscrowKey } = await import('./pgp/openpgp.js'); // OpenPGP.js loads only when escrow keys are in use
    let info: Awaited<ReturnType<typeof checkEscrowKey>>;
    try {
      info = await checkEscrowKey(keyText, new Date(this.d.clock.nowMs()));
    } catch (e) {
      await this.d.audit.recordNow({ action: 'backup.escrow.add', actor, outcome: 'failure', reason: isAppError(e) ? e.code : 'ESCROW_KEY_REFUSED' });
      throw e;
    }
    const duplicate = () => backupErrors.escrowExists(info.fingerprint);
    try {
      await this.db.transaction().execute(async (trx) => {
        const exists = await trx.selectFrom('backup_escrow_keys').select('fingerprint').where('fingerprint', '=', info.fingerprint).executeTakeFirst();
        if (exists) throw duplicate();
        await this.d.audit.record(trx, { action: 'backup.escrow.add', actor, outcome: 'success', targets: { escrow: info.fingerprint } });
        await trx
          .insertInto('backup_escrow_keys')
          .values({ fingerprint: info.fingerprint, armored: info.armored, user_ids: JSON.stringify(info.userIds), algorithm: info.algorithm, expires_at: info.expiresAt, created_at: this.d.clock.nowMs(), created_by: actor })
          .execute();
      });
    } catch (e) {
      // a concurrent add of the same key loses on the primary key: the same answer as the check
      const err = isAppError(e) ? e : /UNIQUE constraint/i.test((e as Error)?.message ?? '') ? duplicate() : e;
      if (isAppError(err) && err.code === 'ESCROW_KEY_EXISTS') await this.d.audit.recordNow({ action: 'backup.escrow.add', actor, outcome: 'failure', reason: err.code, targets: { escrow: info.fingerprint } });
      throw err;
    }
    const { armored: _a, ...rest } = info;
    return rest;
  }

  async listEscrow() {
    return (await listEscrow(this.db)).map((r) => ({
      fingerprint: r.fingerprint,
      userIds: JSON.parse(r.user_ids) as string[],
      algorithm: r.algorithm,
      expiresAt: r.expires_at === null ? null : Number(r.expires_at),
      createdAt: Number(r.created_at),
      createdBy: r.created_by,
    }));
  }

  // ------------------------------------------------------------------ run

  /**
   * Takes a backup to every registered target (the daily job and `coffre backup run`). A target
   * that fails does not stop the others; the run fails (and alerts) if any target failed. Expired
   * backups are destroyed at every target even when this run failed.
   */
  async run(o: { actor: string; progress?: Progress; signal?: AbortSignal; wait?: boolean }): Promise<RunReport> {
    return this.withLock(o.wait ?? false, async () => {
      const targets = await this.listTargets();
      // no alert here: the watchdog's dead-man alarm fires once nothing was backed up for backup.deadManHours
      if (!targets.length) throw new BackupError('BACKUP_NO_TARGET', 'no backup target is registered', { hint: 'register one with `coffre backup target add`', exitCode: 1, httpStatus: 409 });
      const reports: TargetRunReport[] = [];
      for (const t of targets) reports.push(await this.runTarget(t, o));
      const report = { ok: reports.every((r) => r.ok), targets: reports };
      if (!report.ok) {
        const first = reports.find((r) => !r.ok)!;
        throw new BackupError(first.code ?? 'BACKUP_FAILED', `backup failed at ${reports.filter((r) => !r.ok).map((r) => r.target).join(', ')}: ${first.error}`, { details: report, exitCode: 1, httpStatus: 502 });
      }
      return report;
    });
  }

  private async runTarget(info: TargetInfo, o: RunOptions): Promise<TargetRunReport> {
    const t0 = performance.now();
    const report: TargetRunReport = { target: info.name, ok: false, deleted: [] };
    const verdict = this.geoCheck(info);
    if (!verdict.ok) {
      const msg = `target ${info.name} refused at run time: ${verdict.problems.join('; ')}`;
      await this.alert({ kind: 'backup.target-refused', severity: 'critical', message: msg, targets: { target: info.name } });
      await this.d.audit.recordNow({ action: 'backup.run', actor: o.actor, outcome: 'denied', reason: 'SITE_POLICY', targets: { target: info.name } });
      return { ...report, error: msg, code: 'TARGET_REFUSED' };
    }
    const t = this.open(info, o.signal);
    const at: InFlight = { id: null, tmp: null };
    let verifiedNew: HeldBackup | null = null;
    try {
      await this.checkMarker(t);
      await this.cleanTemp(t, info.name, o.actor);
      const w = await this.snapshotAndWrite(t, info, o, at);
      verifiedNew = { id: w.id, createdAt: w.createdAt, slot: w.slot };
      Object.assign(report, { ok: true, backupId: w.id, plainSize: w.plainSize, size: w.size, parts: w.parts, members: w.members, uploadMs: w.uploadMs, verifyMs: w.verifyMs, durationMs: Math.round(performance.now() - t0) });
      await this.d.audit.recordNow({ action: 'backup.run', actor: o.actor, outcome: 'success', targets: { target: info.name, backup: w.id } });
    } catch (e) {
      report.ok = false;
      report.error = isAppError(e) ? e.message : (e as Error).message;
      report.code = isAppError(e) ? e.code : 'BACKUP_FAILED';
      if (at.id) report.backupId = at.id;
      this.d.log.error({ err: e, target: info.name, backup: at.id }, 'backup failed');
      if (at.id) await this.abandon(t, at.id, at.tmp, report.code);
      await this.d.audit.recordNow({ action: 'backup.run', actor: o.actor, outcome: 'failure', reason: report.code, targets: { target: info.name, ...(at.id ? { backup: at.id } : {}) } }).catch((ae: unknown) => this.d.log.error({ err: ae }, 'backup failure could not be audited'));
      await this.alert({ kind: 'backup.failed', severity: 'critical', message: `backup to ${info.name} failed: ${report.code}: ${report.error}; older backups were left untouched`, targets: { target: info.name } });
    }
    // ---- retention: after a verified backup, or expiry alone when this run failed
    try {
      o.progress?.({ phase: 'retention', percent: 0 });
      report.deleted = await this.retain(t, info.name, verifiedNew, o.actor);
      o.progress?.({ phase: 'retention', percent: 100 });
    } catch (e) {
      this.d.log.error({ err: e, target: info.name }, 'retention failed');
      if (report.ok) {
        report.ok = false;
        report.error = `retention failed: ${(e as Error).message}`;
        report.code = isAppError(e) ? e.code : 'BACKUP_RETENTION_FAILED';
      }
    } finally {
      await t.close();
    }
    return report;
  }

  /** Snapshot, then archive + encrypt + upload + verify; the snapshot file is removed in any case. */
  private async snapshotAndWrite(t: BackupTarget, info: TargetInfo, o: RunOptions, at: InFlight): Promise<Written> {
    o.progress?.({ phase: 'snapshot', percent: 0 });
    const snapFile = path.join(this.scratch, `snapshot-${crypto.randomBytes(4).toString('hex')}.db`);
    this.checkLocalSpace(fs.statSync(this.d.db.file ?? '.').size * 1.2 + 64 * 1024 * 1024);
    try {
      await this.d.exportAuditCheckpoints();
      await snapshotDatabase(this.d.db, snapFile);
      const members = await this.members(snapFile);
      const facts = await this.snapshotFacts(snapFile, members);
      o.progress?.({ phase: 'snapshot', percent: 100 });
      const plainEstimate = members.reduce((sum, m) => sum + m.size + 1024, 0) + 1024 * 1024;
      const space = await t.space();
      if (space && space.free < plainEstimate * 1.02 + 16 * 1024 * 1024) throw backupErrors.full(t.display, `${fmtBytes(space.free)} free, the backup needs about ${fmtBytes(plainEstimate)}`);
      return await this.write(t, info, members, facts, plainEstimate, o, at);
    } finally {
      fs.rmSync(snapFile, { force: true });
    }
  }

  /**
   * Writes one backup under `.tmp-<id>/`: a fresh session key wrapped by the HSM (recorded before
   * any byte leaves), the parts, the sidecar; reads it all back and checks it; only then renames
   * it into place and checks the rename by listing.
   */
  private async write(t: BackupTarget, info: TargetInfo, members: MemberSource[], facts: Pick<Manifest, 'schemaVersion' | 'counts'>, plainEstimate: number, o: RunOptions, at: InFlight): Promise<Written> {
    const createdAt = this.d.clock.nowMs();
    const id = newBackupId(createdAt);
    const tmp = `${TMP_PREFIX}${id}`;
    const slot = weekdaySlot(createdAt, this.d.config.site.timeZone);
    const site = this.d.config.site;
    const key = crypto.randomBytes(32);
    try {
      const wrapped = await this.d.keys.wrap(key);
      const escrow = await listEscrow(this.db);
      at.id = id;
      await this.db
        .insertInto('backups')
        .values({ id, target: info.name, slot, created_at: createdAt, state: 'uploading', plain_size: null, size: null, parts: null, members: null, wrapped_key: encodeWrapped(wrapped), escrow: JSON.stringify(escrow.map((e) => e.fingerprint)), verified_at: null, error: null, deleted_at: null, deleted_reason: null })
        .execute();
      at.tmp = tmp;
      const prefix = escrow.length ? await (await import('./pgp/openpgp.js')).escrowPackets(key, escrow.map((e) => e.armored)) : new Uint8Array(0);
      const manifestBase: Omit<Manifest, 'members'> = {
        format: FORMAT,
        backupId: id,
        applianceId: this.d.config.applianceId,
        createdAt: new Date(createdAt).toISOString(),
        ...facts,
        site: { jurisdiction: site.jurisdiction, lat: site.lat, lon: site.lon, timeZone: site.timeZone, ...(site.name ? { name: site.name } : {}) },
      };
      // ---- archive, encrypt, upload (in the backup engine's worker thread)
      const tu = performance.now();
      const up = await runEngine(
        {
          kind: 'write',
          target: this.targetRef(info),
          storage: this.d.config.storage,
          dir: tmp,
          members,
          manifestBase,
          mtime: createdAt,
          key: new Uint8Array(key),
          prefix,
          date: Math.floor(createdAt / 1000),
          partSize: this.cfg.partSizeMiB * 1024 * 1024,
          threads: this.cfg.workers,
          maxInFlight: this.cfg.partsInFlight,
        },
        (n) => o.progress?.({ phase: 'upload', done: n, total: plainEstimate, percent: pct(n, plainEstimate), unit: 'bytes' }),
        o.signal,
      );
      const uploadMs = Math.round(performance.now() - tu);
      const body: Omit<Sidecar, 'mac'> = {
        format: FORMAT,
        backupId: id,
        applianceId: this.d.config.applianceId,
        createdAt: new Date(createdAt).toISOString(),
        slot,
        cipher: 'openpgp-seipdv1-aes256',
        wrappedKey: wrappedToJson(wrapped),
        hsm: { module: this.d.config.keys.module, tokenLabel: this.d.config.keys.tokenLabel, slot: this.d.config.keys.slot, kekLabel: this.d.config.keys.kekLabel },
        escrow: escrow.map((e) => e.fingerprint),
        plainSize: up.plainSize,
        parts: up.parts,
      };
      const mac = await this.d.keys.mac(SIDECAR_MAC_KEY, sidecarMacInput(body));
      const sidecarBytes = Buffer.from(JSON.stringify({ ...body, mac: mac.toString('hex') } satisfies Sidecar, null, 1) + '\n');
      await t.put(`${tmp}/${SIDECAR}`, sidecarBytes);
      // ---- verify: read it all back before it may look complete
      const tv = performance.now();
      const vStart = this.d.clock.nowMs();
      const total = up.parts.reduce((sum, p) => sum + p.size, 0);
      const read = await readSidecar(t, tmp, id);
      if (!read.raw.equals(sidecarBytes)) throw backupErrors.integrity(`${id}: the sidecar read back differs from the one written`);
      const manifest = await this.verifyContent(info, tmp, read.sidecar, key, (n) => o.progress?.({ phase: 'verify', done: n, total, percent: pct(n, total), unit: 'bytes' }));
      if (manifest.members.length !== up.archived.length || manifest.members.some((m, i) => m.sha256 !== up.archived[i]!.sha256)) {
        throw backupErrors.integrity(`${id}: what was read back is not what was archived`);
      }
      const verifyMs = Math.round(performance.now() - tv);
      // ---- complete: rename into place, check by listing
      await t.rename(tmp, id);
      at.tmp = null;
      if (!(await t.list('')).some((e) => e.name === id && e.type === 'dir')) throw backupErrors.io(t.display, `${id} is not listed after the rename`);
      const now = this.d.clock.nowMs();
      const size = total + sidecarBytes.length;
      await this.db.updateTable('backups').set({ state: 'complete', plain_size: up.plainSize, size, parts: up.parts.length, members: manifest.members.length, verified_at: now }).where('id', '=', id).execute();
      await recordCheck(this.db, { backupId: id, kind: 'upload', startedAt: vStart, endedAt: now, ok: true, details: { members: manifest.members.length, plainSize: up.plainSize } });
      return { id, createdAt, slot, plainSize: up.plainSize, size, parts: up.parts.length, members: manifest.members.length, uploadMs, verifyMs };
    } finally {
      key.fill(0);
    }
  }

  /** Marks a run's backup failed: key shredded in the catalogue, its temporary directory removed. */
  private async abandon(t: BackupTarget, id: string, tmp: string | null, code: string): Promise<void> {
    await this.db.updateTable('backups').set({ state: 'failed', wrapped_key: null, error: code, deleted_at: this.d.clock.nowMs(), deleted_reason: 'failed' }).where('id', '=', id).execute().catch(() => undefined);
    await this.truncateWal();
    if (tmp) await t.remove(tmp).catch((e: unknown) => this.d.log.warn({ err: e, id }, 'temporary backup directory not removed; the next run removes it'));
  }

  /**
   * Removes what an interrupted run left: `.tmp-*` directories (never complete-looking) and
   * catalogue rows still `uploading` (their keys are shredded). Called under the lease, so no
   * other run is writing.
   */
  private async cleanTemp(t: BackupTarget, target: string, actor: string): Promise<void> {
    const stale = await this.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'uploading').execute();
    for (const r of stale) {
      await this.db.updateTable('backups').set({ state: 'failed', wrapped_key: null, error: 'ABANDONED', deleted_at: this.d.clock.nowMs(), deleted_reason: 'abandoned' }).where('id', '=', r.id).execute();
      await this.d.audit.recordNow({ action: 'backup.delete', actor, outcome: 'success', reason: 'ABANDONED', targets: { target, backup: r.id } });
    }
    if (stale.length) await this.truncateWal();
    for (const e of await t.list('')) if (e.name.startsWith(TMP_PREFIX)) await t.remove(e.name);
  }

  /** The archive's members: database snapshot, configuration, audit checkpoints, referenced blobs. */
  private async members(snapFile: string): Promise<MemberSource[]> {
    const out: MemberSource[] = [];
    out.push({ name: DB_MEMBER, size: fs.statSync(snapFile).size, file: snapFile });
    const cfgText = fs.readFileSync(path.join(this.d.config.dataDir, 'config.json'));
    out.push({ name: CONFIG_MEMBER, size: cfgText.length, bytes: new Uint8Array(cfgText) });
    const snap = openSnapshot(snapFile);
    try {
      const cps = Buffer.from(JSON.stringify(await this.checkpoints(snap.db), null, 1) + '\n');
      out.push({ name: AUDIT_MEMBER, size: cps.length, bytes: new Uint8Array(cps) });
      const seen = new Set<string>();
      for await (const id of this.d.blobRefs(snap.db)) {
        if (seen.has(id)) continue;
        seen.add(id);
        const st = await this.d.blobs.stat(id);
        if (!st) throw backupErrors.integrity(`the database references blob ${id}, which is missing from the blob store`);
        out.push({ name: `${BLOB_PREFIX}${id}`, size: st.size, blob: id });
      }
    } finally {
      await snap.close();
    }
    return out;
  }

  /** The latest audit checkpoints of the snapshot, in the audit module's export form. */
  private async checkpoints(db: Kysely<Database>): Promise<Record<string, unknown>[]> {
    const rows = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'desc').limit(16).execute();
    return rows.map((r) => exportCheckpoint({ applianceId: this.d.config.applianceId, kind: r.kind as 'periodic', seq: Number(r.seq), hash: r.hash, at: Number(r.at), keyName: r.key_name, mac: r.mac }));
  }

  /** Schema version and counts of the snapshot, for the manifest. */
  private async snapshotFacts(file: string, members: readonly MemberSource[]): Promise<Pick<Manifest, 'schemaVersion' | 'counts'>> {
    const s = openSnapshot(file);
    try {
      const count = async (table: 'vault_documents' | 'vault_versions') => Number((await s.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return {
        schemaVersion: await schemaVersion(s.db),
        counts: { documents: await count('vault_documents'), versions: await count('vault_versions'), blobs: members.filter((m) => m.name.startsWith(BLOB_PREFIX)).length },
      };
    } finally {
      await s.close();
    }
  }

  /** Reads a backup's content back and checks it: parts, manifest, and PRAGMA integrity_check of its database. */
  private async verifyContent(info: TargetInfo, dir: string, sidecar: Sidecar, key: Uint8Array, onBytes?: (n: number) => void): Promise<Manifest> {
    fs.mkdirSync(this.scratch, { recursive: true, mode: 0o700 });
    const dbCopy = path.join(this.scratch, `verify-${crypto.randomBytes(4).toString('hex')}.db`);
    try {
      const { manifest } = await runEngine({ kind: 'read', target: this.targetRef(info), dir, sidecar, key: new Uint8Array(key), threads: this.cfg.workers, files: { [DB_MEMBER]: dbCopy } }, onBytes);
      const snap = openSnapshot(dbCopy);
      try {
        const problems = await integrityProblems(snap.db);
        if (problems.length) throw backupErrors.integrity(`${sidecar.backupId}: the database fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`);
      } finally {
        await snap.close();
      }
      return manifest;
    } finally {
      for (const f of [dbCopy, `${dbCopy}-wal`, `${dbCopy}-shm`, `${dbCopy}-journal`]) fs.rmSync(f, { force: true });
    }
  }

  /** How the backup engine's worker reaches a target: the spec, the password it names, the configured wrappers. */
  targetRef(info: Pick<TargetInfo, 'type' | 'url' | 'hostKey' | 'identityFile' | 'passwordFile'>): TargetRef {
    return {
      spec: specOf(info as TargetInfo),
      secrets: info.passwordFile ? { [info.passwordFile]: readSecretFile(info.passwordFile, 'backup target password file') } : {},
      connectTimeoutMs: this.cfg.connectTimeoutMs,
      ...(this.cfg.bandwidthLimitKiBps ? { bandwidthBytesPerSec: this.cfg.bandwidthLimitKiBps * 1024 } : {}),
      retry: { retries: this.cfg.retries, baseMs: this.cfg.retryBaseMs },
    };
  }

  private checkLocalSpace(need: number): void {
    fs.mkdirSync(this.scratch, { recursive: true, mode: 0o700 });
    const s = fs.statfsSync(this.scratch);
    const free = s.bavail * s.bsize;
    if (free < need) throw backupErrors.localFull(`${fmtBytes(free)} free in ${this.scratch}, about ${fmtBytes(need)} needed`);
  }

  // ------------------------------------------------------------------ retention

  /**
   * Brings the catalogue in line with the target (backups of this appliance found there but
   * unknown here, e.g. after a restore, are adopted), then applies the weekday-slot plan.
   */
  private async retain(t: BackupTarget, target: string, verifiedNew: HeldBackup | null, actor: string): Promise<{ id: string; reason: string }[]> {
    await this.adopt(t, target);
    const pending = await this.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'delete-pending').execute();
    for (const r of pending) await this.destroy(t, target, r.id, 'retry', actor);
    const held = (await listBackups(this.db, { target })).filter((b) => b.state === 'complete').map((b) => ({ id: b.id, createdAt: b.createdAt, slot: b.slot }));
    const plan = planRetention({ held, verifiedNew, now: this.d.clock.nowMs(), graceMs: this.cfg.graceHours * HOUR });
    const out: { id: string; reason: string }[] = [];
    for (const d of plan) {
      if (d.unreplaced) {
        await this.alert({ kind: 'backup.expired-unreplaced', severity: 'warning', message: `backup ${d.id} at ${target} reached the end of its promised life without a newer verified backup in its weekday slot; it was destroyed`, targets: { target, backup: d.id } });
      }
      await this.destroy(t, target, d.id, d.reason, actor);
      out.push({ id: d.id, reason: d.reason });
    }
    return out;
  }

  /** Inserts catalogue rows for this appliance's complete backups found at the target (sidecar MAC checked by the HSM). */
  private async adopt(t: BackupTarget, target: string): Promise<void> {
    const known = new Set((await this.db.selectFrom('backups').select('id').where('target', '=', target).execute()).map((r) => r.id));
    for (const e of await t.list('')) {
      if (e.type !== 'dir' || !isBackupId(e.name) || known.has(e.name)) continue;
      try {
        const { sidecar } = await readSidecar(t, e.name, e.name);
        await openSidecar(this.d.keys, sidecar, { backupId: e.name, applianceId: this.d.config.applianceId }, e.name).then((k) => k.fill(0));
        await this.db
          .insertInto('backups')
          .values({ id: e.name, target, slot: sidecar.slot, created_at: backupIdTime(e.name), state: 'complete', plain_size: sidecar.plainSize, size: sidecar.parts.reduce((s, p) => s + p.size, 0), parts: sidecar.parts.length, members: null, wrapped_key: JSON.stringify(sidecar.wrappedKey), escrow: JSON.stringify(sidecar.escrow), verified_at: null, error: null, deleted_at: null, deleted_reason: null })
          .execute();
        this.d.log.info({ backup: e.name, target }, 'backup found at the target adopted into the catalogue');
      } catch (err) {
        // not ours, or damaged: expiry still applies to it below if it is ours by name; never silently kept past its life
        this.d.log.warn({ err, backup: e.name, target }, 'a backup at the target could not be adopted');
        if (this.d.clock.nowMs() - backupIdTime(e.name) > maxAgeMs(this.cfg.graceHours * HOUR)) {
          await this.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `an unreadable backup ${e.name} at ${target} is past its promised life; check and delete it by hand`, targets: { target, backup: e.name } });
        }
      }
    }
  }

  /**
   * Destroys a backup: first its key in the catalogue (crypto-shredding, audited in the same
   * transaction: audit fails, nothing is destroyed), then at the target its sidecar (the other
   * copy of the wrapped key), then its parts; the deletion is checked by listing. If the target
   * cannot be reached, the row stays `delete-pending` and every later run or watchdog pass retries.
   */
  async destroy(t: BackupTarget, target: string, id: string, reason: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.d.audit.record(trx, { action: 'backup.delete', actor, outcome: 'success', reason: reason.toUpperCase().replace(/-/g, '_'), targets: { target, backup: id } });
      await trx.updateTable('backups').set({ wrapped_key: null, state: 'delete-pending', deleted_reason: reason }).where('id', '=', id).execute();
    });
    await this.truncateWal();
    try {
      await t.remove(`${id}/${SIDECAR}`);
      await t.remove(id);
      if ((await t.list('')).some((e) => e.name === id)) throw backupErrors.io(t.display, `${id} is still listed after its deletion`);
    } catch (e) {
      await this.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `backup ${id} at ${target} could not be deleted (${(e as Error).message}); its key is destroyed here, deletion will be retried`, targets: { target, backup: id } });
      throw e;
    }
    await this.db.updateTable('backups').set({ state: 'deleted', deleted_at: this.d.clock.nowMs() }).where('id', '=', id).execute();
  }

  /** A shredded key must not linger in the write-ahead log (secure_delete covers the main file). */
  private async truncateWal(): Promise<void> {
    if (this.d.db.dialect === 'sqlite') await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(this.db).catch(() => undefined);
  }

  // ------------------------------------------------------------------ verify

  /** Resolves `latest` or an id to a catalogue row. */
  async find(idOrLatest: string, target?: string): Promise<BackupInfo> {
    if (idOrLatest === 'latest') {
      const b = (await listBackups(this.db, target ? { target } : {})).find((x) => x.state === 'complete');
      if (!b) throw backupErrors.notFoundBackup('latest (no complete backup)');
      return b;
    }
    backupIdTime(idOrLatest);
    const r = await getBackupRow(this.db, idOrLatest);
    if (!r || r.state === 'deleted' || r.state === 'failed') throw backupErrors.notFoundBackup(idOrLatest);
    return backupFromRow(r);
  }

  /**
   * Downloads, decrypts and checks a backup (every part, every member hash, the database's
   * integrity). The result is recorded; a failure alerts.
   */
  async verify(idOrLatest: string, o: { actor: string; kind?: string; progress?: Progress; wait?: boolean }): Promise<{ id: string; target: string; ok: true; members: number; plainSize: number; durationMs: number }> {
    return this.withLock(o.wait ?? false, async () => {
      const b = await this.find(idOrLatest);
      const info = await getTarget(this.db, b.target);
      if (!info) throw backupErrors.usage(`backup ${b.id} is at target ${b.target}, which is no longer registered`);
      const started = this.d.clock.nowMs();
      const t0 = performance.now();
      const t = this.open(info);
      try {
        const row = await getBackupRow(this.db, b.id);
        const { sidecar } = await readSidecar(t, b.id, b.id);
        if (row?.wrapped_key && JSON.stringify(decodeWrapped(row.wrapped_key)) !== JSON.stringify(decodeWrapped(JSON.stringify(sidecar.wrappedKey)))) {
          throw backupErrors.integrity(`${b.id}: the sidecar's wrapped key differs from the catalogue's`);
        }
        const key = await openSidecar(this.d.keys, sidecar, { backupId: b.id, applianceId: this.d.config.applianceId }, b.id);
        let manifest: Manifest;
        try {
          const total = sidecar.parts.reduce((s, p) => s + p.size, 0);
          manifest = await this.verifyContent(info, b.id, sidecar, key, (n) => o.progress?.({ phase: 'verify', done: n, total, percent: pct(n, total), unit: 'bytes' }));
        } finally {
          key.fill(0);
        }
        const now = this.d.clock.nowMs();
        await this.db.updateTable('backups').set({ verified_at: now, members: manifest.members.length, error: null }).where('id', '=', b.id).execute();
        await recordCheck(this.db, { backupId: b.id, kind: o.kind ?? 'verify', startedAt: started, endedAt: now, ok: true, details: { members: manifest.members.length } });
        await this.d.audit.recordNow({ action: 'backup.verify', actor: o.actor, outcome: 'success', targets: { target: b.target, backup: b.id } });
        return { id: b.id, target: b.target, ok: true as const, members: manifest.members.length, plainSize: sidecar.plainSize, durationMs: Math.round(performance.now() - t0) };
      } catch (e) {
        const code = isAppError(e) ? e.code : 'BACKUP_VERIFY_FAILED';
        await recordCheck(this.db, { backupId: b.id, kind: o.kind ?? 'verify', startedAt: started, endedAt: this.d.clock.nowMs(), ok: false, error: `${code}: ${(e as Error).message}`.slice(0, 2000) });
        await this.db.updateTable('backups').set({ error: code }).where('id', '=', b.id).execute();
        await this.d.audit.recordNow({ action: 'backup.verify', actor: o.actor, outcome: 'failure', reason: code, targets: { target: b.target, backup: b.id } }).catch(() => undefined);
        await this.alert({ kind: 'backup.verify-failed', severity: 'critical', message: `verification of backup ${b.id} at ${b.target} failed: ${code}: ${(e as Error).message}`, targets: { target: b.target, backup: b.id } });
        throw e;
      } finally {
        await t.close();
      }
    });
  }

  /** The weekly full verification: every complete backup (all seven slots) at every target. */
  async verifyAll(o: { actor: string; progress?: Progress }): Promise<{ ok: number; failed: { id: string; error: string }[] }> {
    const all = (await listBackups(this.db)).filter((b) => b.state === 'complete');
    const failed: { id: string; error: string }[] = [];
    let ok = 0;
    for (const b of all) {
      try {
        await this.verify(b.id, { actor: o.actor, kind: 'weekly', wait: true, ...(o.progress ? { progress: o.progress } : {}) });
        ok++;
      } catch (e) {
        failed.push({ id: b.id, error: isAppError(e) ? e.toLine() : (e as Error).message });
      }
    }
    if (failed.length) throw new BackupError('BACKUP_VERIFY_FAILED', `${failed.length} of ${all.length} backups failed verification`, { details: { ok, failed } });
    return { ok, failed };
  }

  // ------------------------------------------------------------------ restore drill

  /**
   * The weekly restore drill: restores the newest backup into a scratch directory with this
   * appliance's HSM, checks the restored counts against the backup's manifest, decrypts sample
   * documents and compares their SHA-256, records the time taken (the RTO) and removes the copy.
   */
  async drill(o: { actor: string; progress?: Progress; wait?: boolean; skipWhenNone?: boolean }): Promise<{ backupId: string; target: string; rtoMs: number; documents: number; versions: number; blobs: number; samples: number } | { skipped: string }> {
    return this.withLock(o.wait ?? false, async () => {
      const b = await this.find('latest').catch((e: unknown) => {
        if (o.skipWhenNone && isAppError(e) && e.code === 'BACKUP_NOT_FOUND') return null;
        throw e;
      });
      if (!b) return { skipped: 'no complete backup yet' };
      const info = await getTarget(this.db, b.target);
      if (!info) throw backupErrors.usage(`backup ${b.id} is at target ${b.target}, which is no longer registered`);
      const started = this.d.clock.nowMs();
      const t0 = performance.now();
      const dir = path.join(this.scratch, `drill-${crypto.randomBytes(4).toString('hex')}`);
      const t = this.open(info);
      try {
        const r = await restoreInto({ target: t, targetRef: this.targetRef(info), threads: this.cfg.workers, backup: b.id, dataDir: dir, keys: this.d.keys, keysSection: { ...this.d.config.keys }, applianceId: this.d.config.applianceId, log: this.d.log, ...(o.progress ? { progress: o.progress } : {}) });
        const s = await sampleDocuments(dir, this.d.keys, this.cfg.drillSamples);
        const got = { documents: s.documents, versions: s.versions, blobs: r.blobs };
        if (got.documents !== r.expected.documents || got.versions !== r.expected.versions || got.blobs !== r.expected.blobs) {
          throw backupErrors.integrity(`restored ${JSON.stringify(got)}, the backup recorded ${JSON.stringify(r.expected)}`);
        }
        const rtoMs = Math.round(performance.now() - t0);
        const details = { rtoMs, restoreMs: r.durationMs, ...got, samples: s.checked, plainSize: r.plainSize };
        await recordCheck(this.db, { backupId: b.id, kind: 'drill', startedAt: started, endedAt: this.d.clock.nowMs(), ok: true, details });
        await this.d.audit.recordNow({ action: 'backup.drill', actor: o.actor, outcome: 'success', targets: { target: b.target, backup: b.id } });
        return { backupId: b.id, target: b.target, rtoMs, ...got, samples: s.checked };
      } catch (e) {
        const code = isAppError(e) ? e.code : 'BACKUP_DRILL_FAILED';
        await recordCheck(this.db, { backupId: b.id, kind: 'drill', startedAt: started, endedAt: this.d.clock.nowMs(), ok: false, error: `${code}: ${(e as Error).message}`.slice(0, 2000) });
        await this.d.audit.recordNow({ action: 'backup.drill', actor: o.actor, outcome: 'failure', reason: code, targets: { target: b.target, backup: b.id } }).catch(() => undefined);
        await this.alert({ kind: 'backup.drill-failed', severity: 'critical', message: `the restore drill of backup ${b.id} failed: ${code}: ${(e as Error).message}`, targets: { target: b.target, backup: b.id } });
        throw e;
      } finally {
        await t.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  // ------------------------------------------------------------------ list

  async list(o: { includeDeleted?: boolean } = {}) {
    const rows = await listBackups(this.db, o);
    return rows.map((b) => ({ ...b, slotName: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][b.slot - 1] ?? String(b.slot) }));
  }

  // ------------------------------------------------------------------ watchdog

  /**
   * Hourly: raises the dead-man alarm when no backup was verified for `deadManHours`, and destroys
   * backups past their promised life even when the daily job is not running.
   */
  async watchdog(o: { actor: string }): Promise<{ overdue: boolean; lastVerifiedAt: number | null; destroyed: string[] }> {
    const now = this.d.clock.nowMs();
    const last = await this.db.selectFrom('backups').select((eb) => eb.fn.max('verified_at').as('v')).where('state', 'in', ['complete', 'delete-pending', 'deleted']).executeTakeFirst();
    const lastVerifiedAt = last?.v === null || last?.v === undefined ? null : Number(last.v);
    let since = lastVerifiedAt;
    if (since === null) {
      const created = await this.db.selectFrom('appliance_meta').select('value').where('key', '=', 'created_at').executeTakeFirst();
      since = created ? Date.parse(created.value) : now;
    }
    const overdue = now - since > this.cfg.deadManHours * HOUR;
    if (overdue) {
      await this.alert({
        kind: 'backup.overdue',
        severity: 'critical',
        message: lastVerifiedAt === null ? `no backup has ever been verified (appliance created ${new Date(since).toISOString()})` : `no backup verified for ${((now - since) / HOUR).toFixed(1)} h (last at ${new Date(since).toISOString()})`,
      });
    }
    const destroyed: string[] = [];
    const limit = now - maxAgeMs(this.cfg.graceHours * HOUR);
    const due = await this.db.selectFrom('backups').select(['id', 'target']).where((eb) => eb.or([eb('state', '=', 'delete-pending'), eb.and([eb('state', '=', 'complete'), eb('created_at', '<', limit)])])).execute();
    if (due.length) {
      await this.withLock(true, async () => {
        for (const target of new Set(due.map((d) => d.target))) {
          const info = await getTarget(this.db, target);
          if (!info) continue;
          const t = this.open(info);
          try {
            await this.checkMarker(t);
            destroyed.push(...(await this.retain(t, target, null, o.actor)).map((d) => d.id));
          } catch (e) {
            this.d.log.error({ err: e, target }, 'watchdog: expired backups not destroyed');
            // keys of expired backups are destroyed here even when the target is down
            const rows = await this.db.selectFrom('backups').select('id').where('target', '=', target).where('state', '=', 'complete').where('created_at', '<', limit).execute();
            for (const r of rows) {
              await this.db.transaction().execute(async (trx) => {
                await this.d.audit.record(trx, { action: 'backup.delete', actor: o.actor, outcome: 'success', reason: 'EXPIRED', targets: { target, backup: r.id } });
                await trx.updateTable('backups').set({ wrapped_key: null, state: 'delete-pending', deleted_reason: 'expired' }).where('id', '=', r.id).execute();
              });
            }
            await this.truncateWal();
            await this.alert({ kind: 'backup.delete-failed', severity: 'critical', message: `expired backups at ${target} could not be deleted (${(e as Error).message}); their keys are destroyed here, deletion at the target will be retried`, targets: { target } });
          } finally {
            await t.close();
          }
        }
      });
    }
    return { overdue, lastVerifiedAt, destroyed };
  }

  // ------------------------------------------------------------------ helpers

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
    const renew = setInterval(() => void this.leases.renew(LOCK), Math.max(1000, Math.floor(this.d.config.jobs.leaseTtlMs / 3)));
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.leases.release(LOCK).catch(() => undefined);
    }
  }
}


async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}


const pct = (n: number, total: number) => (total > 0 ? Math.min(100, Math.round((n / total) * 1000) / 10) : 0);

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

