import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { BackupSchema } from '../db/index.js';
import { isAppError } from '../shared/errors.js';
import { exportCheckpoint } from '../audit/index.js';
import { listTargets, recordCheck, type TargetInfo } from './catalogue.js';
import { activeEscrow } from './escrow.js';
import { macCreating } from '../keys/index.js';
import type { BackupCore } from './core.js';
import { backupErrors, BackupError } from './errors.js';
import {
  AUDIT_MEMBER,
  BLOB_PREFIX,
  CONFIG_MEMBER,
  DB_MEMBER,
  FORMAT,
  newBackupId,
  SESSION_KEY_SCHEME,
  sessionKeyInput,
  sessionKeyName,
  SIDECAR,
  SIDECAR_FORMAT,
  SIDECAR_MAC_KEY,
  sidecarMacInput,
  TMP_PREFIX,
  type Manifest,
  type SessionKeyRef,
  type Sidecar,
} from './format.js';
import { runEngine, type MemberSource } from './engine/index.js';
import { keyRefOf, readSidecar } from './reader.js';
import { weekdaySlot, type HeldBackup } from './retention.js';
import { openSnapshot, schemaVersion, snapshotDatabase } from './snapshot.js';
import { alertPending, cleanTemp, retain, shredExpired } from './shred.js';
import type { BackupTarget } from './targets/types.js';
import { fmtBytes, pct, type Progress, type RunReport, type TargetRunReport } from './types.js';
import { verifyContent } from './verify.js';

/** A backup run: snapshot → archive → encrypt → upload → verify → rename → retention, at every target. */

type RunOptions = { actor: string; progress?: Progress; signal?: AbortSignal };
/** what a run has created so far, so a failure can undo it */
type InFlight = { id: string | null; tmp: string | null };
type Written = {
  id: string;
  createdAt: number;
  slot: number;
  plainSize: number;
  size: number;
  parts: number;
  members: number;
  uploadMs: number;
  verifyMs: number;
};

/**
 * Takes a backup to every registered target (the daily job and `coffre backup run`). A target
 * that fails does not stop the others; the run fails (and alerts) if any target failed. Expired
 * backups are destroyed at every target even when this run failed.
 */
export async function run(
  c: BackupCore,
  o: { actor: string; progress?: Progress; signal?: AbortSignal; wait?: boolean },
): Promise<RunReport> {
  return c.withLock(o.wait ?? false, async () => {
    const targets = await listTargets(c.db);
    // no alert here: the watchdog's dead-man alarm fires once nothing was backed up for backup.deadManHours
    if (!targets.length)
      throw new BackupError('BACKUP_NO_TARGET', 'no backup target is registered', {
        hint: 'register one with `coffre backup target add`',
        exitCode: 1,
        httpStatus: 409,
      });
    const reports: TargetRunReport[] = [];
    for (const t of targets) {
      reports.push(
        o.signal?.aborted
          ? { target: t.name, ok: false, code: 'BACKUP_ABORTED', error: 'stopped before this target', deleted: [] }
          : await runTarget(c, t, o),
      );
    }
    const report = { ok: reports.every((r) => r.ok), targets: reports };
    if (!report.ok) {
      const first = reports.find((r) => !r.ok)!;
      throw new BackupError(
        first.code ?? 'BACKUP_FAILED',
        `backup failed at ${reports
          .filter((r) => !r.ok)
          .map((r) => r.target)
          .join(', ')}: ${first.error}`,
        { details: report, exitCode: 1, httpStatus: 502 },
      );
    }
    return report;
  });
}

async function runTarget(c: BackupCore, info: TargetInfo, o: RunOptions): Promise<TargetRunReport> {
  const t0 = performance.now();
  const report: TargetRunReport = { target: info.name, ok: false, deleted: [] };
  const verdict = c.geoCheck(info);
  if (!verdict.ok) {
    const msg = `target ${info.name} refused at run time: ${verdict.problems.join('; ')}`;
    await c.alert({
      kind: 'backup.target-refused',
      severity: 'critical',
      message: msg,
      targets: { target: info.name },
    });
    await c.d.audit.recordNow({
      action: 'backup.run',
      actor: o.actor,
      outcome: 'denied',
      reason: 'SITE_POLICY',
      targets: { target: info.name },
    });
    return { ...report, error: msg, code: 'TARGET_REFUSED' };
  }
  const t = c.open(info, o.signal);
  const stopped = () => o.signal?.aborted === true;
  const at: InFlight = { id: null, tmp: null };
  let verifiedNew: HeldBackup | null = null;
  try {
    await c.checkMarker(t, info.name);
    await cleanTemp(c, t, info.name, o.actor);
    const w = await snapshotAndWrite(c, t, info, o, at);
    verifiedNew = { id: w.id, createdAt: w.createdAt, slot: w.slot };
    Object.assign(report, {
      ok: true,
      backupId: w.id,
      plainSize: w.plainSize,
      size: w.size,
      parts: w.parts,
      members: w.members,
      uploadMs: w.uploadMs,
      verifyMs: w.verifyMs,
      durationMs: Math.round(performance.now() - t0),
    });
    await c.d.audit.recordNow({
      action: 'backup.run',
      actor: o.actor,
      outcome: 'success',
      targets: { target: info.name, backup: w.id },
    });
  } catch (e) {
    report.ok = false;
    report.error = isAppError(e) ? e.message : (e as Error).message;
    report.code = isAppError(e) ? e.code : 'BACKUP_FAILED';
    if (at.id) report.backupId = at.id;
    c.d.log.error({ err: e, target: info.name, backup: at.id }, 'backup failed');
    // stopped (SIGTERM, shutdown): the catalogue is put right now; the target's temporary directory is left to the next run
    if (at.id) await abandon(c, t, at.id, stopped() ? null : at.tmp, report.code);
    await c.d.audit
      .recordNow({
        action: 'backup.run',
        actor: o.actor,
        outcome: 'failure',
        reason: report.code,
        targets: { target: info.name, ...(at.id ? { backup: at.id } : {}) },
      })
      .catch((ae: unknown) => c.d.log.error({ err: ae }, 'backup failure could not be audited'));
    if (!stopped())
      await c.alert({
        kind: 'backup.failed',
        severity: 'critical',
        message: `backup to ${info.name} failed: ${report.code}: ${report.error}; older backups were left untouched`,
        targets: { target: info.name },
      });
  }
  // ---- not when stopped
  if (stopped()) {
    await t.close();
    return report;
  }
  // ---- retention at the target only after a verified backup there (a failed run may be looking
  // at the wrong directory, e.g. an unmounted share); otherwise expired backups are crypto-shredded
  // here and their files wait, alerted, for a run that succeeds
  try {
    o.progress?.({ phase: 'retention', percent: 0 });
    if (verifiedNew) report.deleted = await retain(c, t, info.name, verifiedNew, o.actor);
    else {
      await shredExpired(c, info.name, o.actor);
      await alertPending(c, info.name, `the run failed: ${report.code}`);
    }
    o.progress?.({ phase: 'retention', percent: 100 });
  } catch (e) {
    c.d.log.error({ err: e, target: info.name }, 'retention failed');
    await alertPending(c, info.name, (e as Error).message);
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
async function snapshotAndWrite(
  c: BackupCore,
  t: BackupTarget,
  info: TargetInfo,
  o: RunOptions,
  at: InFlight,
): Promise<Written> {
  o.progress?.({ phase: 'snapshot', percent: 0 });
  const snapFile = path.join(c.scratch, `snapshot-${crypto.randomBytes(4).toString('hex')}.db`);
  checkLocalSpace(c, fs.statSync(c.d.db.file ?? '.').size * 1.2 + 64 * 1024 * 1024);
  try {
    await c.d.exportAuditCheckpoints();
    await snapshotDatabase(c.d.db, snapFile);
    const members = await archiveMembers(c, snapFile);
    const facts = await snapshotFacts(c, snapFile, members);
    o.progress?.({ phase: 'snapshot', percent: 100 });
    const plainEstimate = members.reduce((sum, m) => sum + m.size + 1024, 0) + 1024 * 1024;
    const space = await t.space();
    if (space && space.free < plainEstimate * 1.02 + 16 * 1024 * 1024)
      throw backupErrors.full(
        t.display,
        `${fmtBytes(space.free)} free, the backup needs about ${fmtBytes(plainEstimate)}`,
      );
    return await write(c, t, info, members, facts, plainEstimate, o, at);
  } finally {
    fs.rmSync(snapFile, { force: true });
  }
}

/**
 * Writes one backup under `.tmp-<id>/`: a fresh session key wrapped by the HSM (recorded before
 * any byte leaves), the parts, the sidecar; reads it all back and checks it; only then renames
 * it into place and checks the rename by listing.
 */
async function write(
  c: BackupCore,
  t: BackupTarget,
  info: TargetInfo,
  members: MemberSource[],
  facts: Pick<Manifest, 'schemaVersion' | 'counts'>,
  plainEstimate: number,
  o: RunOptions,
  at: InFlight,
): Promise<Written> {
  const createdAt = c.d.clock.nowMs();
  const id = newBackupId(createdAt);
  const tmp = `${TMP_PREFIX}${id}`;
  const slot = weekdaySlot(createdAt, c.d.config.site.timeZone);
  const site = c.d.config.site;
  // the session key is derived in the HSM under a key object of this backup's own, destroyed with it
  const keyRef: SessionKeyRef = {
    scheme: SESSION_KEY_SCHEME,
    keyName: sessionKeyName(id),
    nonce: crypto.randomBytes(32).toString('hex'),
  };
  let key: Buffer | null = null;
  try {
    const escrow = await activeEscrow(c, createdAt);
    at.id = id;
    // recorded before the HSM key exists: an interrupted run's key is found and destroyed by the next run
    await c.db
      .insertInto('backups')
      .values({
        id,
        target: info.name,
        slot,
        created_at: createdAt,
        state: 'uploading',
        plain_size: null,
        size: null,
        parts: null,
        members: null,
        wrapped_key: keyRefOf({ sessionKey: keyRef }),
        escrow: JSON.stringify(escrow.map((e) => e.fingerprint)),
        verified_at: null,
        error: null,
        deleted_at: null,
        deleted_reason: null,
      })
      .execute();
    await c.d.keys.createMacKey(keyRef.keyName);
    key = await c.d.keys.mac(keyRef.keyName, sessionKeyInput(id, keyRef.nonce), { create: false });
    at.tmp = tmp;
    const prefix = escrow.length
      ? await (
          await import('./pgp/openpgp.js')
        ).escrowPackets(
          key,
          escrow.map((e) => e.armored),
        )
      : new Uint8Array(0);
    const manifestBase: Omit<Manifest, 'members'> = {
      format: FORMAT,
      backupId: id,
      applianceId: c.d.config.applianceId,
      createdAt: new Date(createdAt).toISOString(),
      ...facts,
      site: {
        jurisdiction: site.jurisdiction,
        lat: site.lat,
        lon: site.lon,
        timeZone: site.timeZone,
        ...(site.name ? { name: site.name } : {}),
      },
    };
    // ---- archive, encrypt, upload (in the backup engine's worker thread)
    const tu = performance.now();
    const up = await runEngine(
      {
        kind: 'write',
        target: c.targetRef(info),
        storage: c.d.config.storage,
        dir: tmp,
        members,
        manifestBase,
        mtime: createdAt,
        key: new Uint8Array(key),
        prefix,
        date: Math.floor(createdAt / 1000),
        partSize: c.cfg.partSizeMiB * 1024 * 1024,
        threads: c.cfg.workers,
        maxInFlight: c.cfg.partsInFlight,
      },
      (n) =>
        o.progress?.({ phase: 'upload', done: n, total: plainEstimate, percent: pct(n, plainEstimate), unit: 'bytes' }),
      o.signal,
    );
    const uploadMs = Math.round(performance.now() - tu);
    const body: Omit<Sidecar, 'mac'> = {
      format: SIDECAR_FORMAT,
      backupId: id,
      applianceId: c.d.config.applianceId,
      createdAt: new Date(createdAt).toISOString(),
      slot,
      cipher: 'openpgp-seipdv1-aes256',
      sessionKey: keyRef,
      hsm: {
        module: c.d.config.keys.module,
        tokenLabel: c.d.config.keys.tokenLabel,
        slot: c.d.config.keys.slot,
        kekLabel: c.d.config.keys.kekLabel,
      },
      escrow: escrow.map((e) => e.fingerprint),
      plainSize: up.plainSize,
      parts: up.parts,
    };
    const mac = await macCreating(c.d.keys, SIDECAR_MAC_KEY, sidecarMacInput(body));
    const sidecarBytes = Buffer.from(
      JSON.stringify({ ...body, mac: mac.toString('hex') } satisfies Sidecar, null, 1) + '\n',
    );
    await t.put(`${tmp}/${SIDECAR}`, sidecarBytes);
    // ---- verify: read it all back before it may look complete
    const tv = performance.now();
    const vStart = c.d.clock.nowMs();
    const total = up.parts.reduce((sum, p) => sum + p.size, 0);
    const read = await readSidecar(t, tmp, id);
    if (!read.raw.equals(sidecarBytes))
      throw backupErrors.integrity(`${id}: the sidecar read back differs from the one written`);
    const manifest = await verifyContent(
      c,
      info,
      tmp,
      read.sidecar,
      key,
      (n) => o.progress?.({ phase: 'verify', done: n, total, percent: pct(n, total), unit: 'bytes' }),
      o.signal,
    );
    if (
      manifest.members.length !== up.archived.length ||
      manifest.members.some((m, i) => m.sha256 !== up.archived[i]!.sha256)
    ) {
      throw backupErrors.integrity(`${id}: what was read back is not what was archived`);
    }
    const verifyMs = Math.round(performance.now() - tv);
    // ---- complete: rename into place, check by listing
    await t.rename(tmp, id);
    at.tmp = null;
    if (!(await t.list('')).some((e) => e.name === id && e.type === 'dir'))
      throw backupErrors.io(t.display, `${id} is not listed after the rename`);
    const now = c.d.clock.nowMs();
    const size = total + sidecarBytes.length;
    await c.db
      .updateTable('backups')
      .set({
        state: 'complete',
        plain_size: up.plainSize,
        size,
        parts: up.parts.length,
        members: manifest.members.length,
        verified_at: now,
      })
      .where('id', '=', id)
      .execute();
    await recordCheck(c.db, {
      backupId: id,
      kind: 'upload',
      startedAt: vStart,
      endedAt: now,
      ok: true,
      details: { members: manifest.members.length, plainSize: up.plainSize },
    });
    return {
      id,
      createdAt,
      slot,
      plainSize: up.plainSize,
      size,
      parts: up.parts.length,
      members: manifest.members.length,
      uploadMs,
      verifyMs,
    };
  } finally {
    key?.fill(0);
  }
}

/** Marks a run's backup failed: key shredded in the catalogue, its temporary directory removed. */
async function abandon(c: BackupCore, t: BackupTarget, id: string, tmp: string | null, code: string): Promise<void> {
  const shredded = await c.shredKey(id).then(
    () => true,
    (e: unknown) => (
      c.d.log.error({ err: e, id }, "the failed backup's HSM key could not be destroyed; the next run retries"),
      false
    ),
  );
  // a key that could not be destroyed leaves the row pending: every later run retries
  await c.db
    .updateTable('backups')
    .set({
      state: shredded ? 'failed' : 'delete-pending',
      wrapped_key: null,
      error: code,
      deleted_at: shredded ? c.d.clock.nowMs() : null,
      deleted_reason: 'failed',
    })
    .where('id', '=', id)
    .execute()
    .catch(() => undefined);
  await c.truncateWal();
  if (tmp)
    await t
      .remove(tmp)
      .catch((e: unknown) =>
        c.d.log.warn({ err: e, id }, 'temporary backup directory not removed; the next run removes it'),
      );
}

/** The archive's members: database snapshot, configuration, audit checkpoints, referenced blobs. */
async function archiveMembers(c: BackupCore, snapFile: string): Promise<MemberSource[]> {
  const out: MemberSource[] = [];
  out.push({ name: DB_MEMBER, size: fs.statSync(snapFile).size, file: snapFile });
  const cfgText = fs.readFileSync(path.join(c.d.config.dataDir, 'config.json'));
  out.push({ name: CONFIG_MEMBER, size: cfgText.length, bytes: new Uint8Array(cfgText) });
  const snap = openSnapshot(snapFile);
  try {
    const cps = Buffer.from(JSON.stringify(await checkpoints(c, snap.db), null, 1) + '\n');
    out.push({ name: AUDIT_MEMBER, size: cps.length, bytes: new Uint8Array(cps) });
    const seen = new Set<string>();
    for await (const id of c.d.blobRefs(snap.db)) {
      if (seen.has(id)) continue;
      seen.add(id);
      const st = await c.d.blobs.stat(id);
      if (!st) throw backupErrors.integrity(`the database references blob ${id}, which is missing from the blob store`);
      out.push({ name: `${BLOB_PREFIX}${id}`, size: st.size, blob: id });
    }
  } finally {
    await snap.close();
  }
  return out;
}

/** The latest audit checkpoints of the snapshot, in the audit module's export form. */
async function checkpoints(c: BackupCore, db: Kysely<BackupSchema>): Promise<Record<string, unknown>[]> {
  const rows = await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'desc').limit(16).execute();
  return rows.map((r) =>
    exportCheckpoint({
      applianceId: c.d.config.applianceId,
      kind: r.kind as 'periodic',
      seq: Number(r.seq),
      hash: r.hash,
      at: Number(r.at),
      keyName: r.key_name,
      mac: r.mac,
    }),
  );
}

/** Schema version and counts of the snapshot, for the manifest. */
async function snapshotFacts(
  c: BackupCore,
  file: string,
  members: readonly MemberSource[],
): Promise<Pick<Manifest, 'schemaVersion' | 'counts'>> {
  const s = openSnapshot(file);
  try {
    const count = async (table: 'vault_documents' | 'vault_versions') =>
      Number(
        (
          await s.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      schemaVersion: await schemaVersion(s.db),
      counts: {
        documents: await count('vault_documents'),
        versions: await count('vault_versions'),
        blobs: members.filter((m) => m.name.startsWith(BLOB_PREFIX)).length,
      },
    };
  } finally {
    await s.close();
  }
}

function checkLocalSpace(c: BackupCore, need: number): void {
  fs.mkdirSync(c.scratch, { recursive: true, mode: 0o700 });
  const s = fs.statfsSync(c.scratch);
  const free = s.bavail * s.bsize;
  if (free < need)
    throw backupErrors.localFull(`${fmtBytes(free)} free in ${c.scratch}, about ${fmtBytes(need)} needed`);
}
