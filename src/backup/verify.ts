import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isAppError } from '../shared/errors.js';
import {
  backupFromRow,
  getBackupRow,
  getTarget,
  listBackups,
  recordCheck,
  type BackupInfo,
  type TargetInfo,
} from './catalogue.js';
import type { BackupCore } from './core.js';
import { backupErrors, BackupError } from './errors.js';
import { backupIdTime, canonicalJson, DB_MEMBER, type Manifest, type Sidecar } from './format.js';
import { runEngine } from './engine/index.js';
import { keyRefOf, openSidecar, readSidecar } from './reader.js';
import { integrityProblems, openSnapshot } from './snapshot.js';
import { pct, type Progress } from './types.js';

/** Reading a backup back and checking it: after each upload, on demand, and weekly for all. */

/** Reads a backup's content back and checks it: parts, manifest, and PRAGMA integrity_check of its database. */
export async function verifyContent(
  c: BackupCore,
  info: TargetInfo,
  dir: string,
  sidecar: Sidecar,
  key: Uint8Array,
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<Manifest> {
  fs.mkdirSync(c.scratch, { recursive: true, mode: 0o700 });
  const dbCopy = path.join(c.scratch, `verify-${crypto.randomBytes(4).toString('hex')}.db`);
  try {
    const { manifest } = await runEngine(
      {
        kind: 'read',
        target: c.targetRef(info),
        dir,
        sidecar,
        key: new Uint8Array(key),
        threads: c.cfg.workers,
        files: { [DB_MEMBER]: dbCopy },
      },
      onBytes,
      signal,
    );
    const snap = openSnapshot(dbCopy);
    try {
      const problems = await integrityProblems(snap.db);
      if (problems.length)
        throw backupErrors.integrity(
          `${sidecar.backupId}: the database fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`,
        );
    } finally {
      await snap.close();
    }
    return manifest;
  } finally {
    for (const f of [dbCopy, `${dbCopy}-wal`, `${dbCopy}-shm`, `${dbCopy}-journal`]) fs.rmSync(f, { force: true });
  }
}

// ------------------------------------------------------------------ verify

/** Resolves `latest` or an id to a catalogue row. */
export async function find(c: BackupCore, idOrLatest: string, target?: string): Promise<BackupInfo> {
  if (idOrLatest === 'latest') {
    const b = (await listBackups(c.db, target ? { target } : {})).find((x) => x.state === 'complete');
    if (!b) throw backupErrors.notFoundBackup('latest (no complete backup)');
    return b;
  }
  backupIdTime(idOrLatest);
  const r = await getBackupRow(c.db, idOrLatest);
  if (!r || r.state === 'deleted' || r.state === 'failed') throw backupErrors.notFoundBackup(idOrLatest);
  return backupFromRow(r);
}

/**
 * Downloads, decrypts and checks a backup (every part, every member hash, the database's
 * integrity). The result is recorded; a failure alerts.
 */
export async function verify(
  c: BackupCore,
  idOrLatest: string,
  o: { actor: string; kind?: string; progress?: Progress; wait?: boolean; signal?: AbortSignal },
): Promise<{ id: string; target: string; ok: true; members: number; plainSize: number; durationMs: number }> {
  return c.withLock(o.wait ?? false, async () => {
    const b = await find(c, idOrLatest);
    const info = await getTarget(c.db, b.target);
    if (!info) throw backupErrors.usage(`backup ${b.id} is at target ${b.target}, which is no longer registered`);
    const started = c.d.clock.nowMs();
    const t0 = performance.now();
    const t = c.open(info);
    try {
      const row = await getBackupRow(c.db, b.id);
      const { sidecar } = await readSidecar(t, b.id, b.id);
      if (row?.wrapped_key && canonicalJson(JSON.parse(row.wrapped_key)) !== keyRefOf(sidecar)) {
        throw backupErrors.integrity(`${b.id}: the sidecar's key reference differs from the catalogue's`);
      }
      const key = await openSidecar(c.d.keys, sidecar, { backupId: b.id, applianceId: c.d.config.applianceId }, b.id);
      let manifest: Manifest;
      try {
        const total = sidecar.parts.reduce((s, p) => s + p.size, 0);
        manifest = await verifyContent(
          c,
          info,
          b.id,
          sidecar,
          key,
          (n) => o.progress?.({ phase: 'verify', done: n, total, percent: pct(n, total), unit: 'bytes' }),
          o.signal,
        );
      } finally {
        key.fill(0);
      }
      const now = c.d.clock.nowMs();
      await c.db
        .updateTable('backups')
        .set({ verified_at: now, members: manifest.members.length, error: null })
        .where('id', '=', b.id)
        .execute();
      await recordCheck(c.db, {
        backupId: b.id,
        kind: o.kind ?? 'verify',
        startedAt: started,
        endedAt: now,
        ok: true,
        details: { members: manifest.members.length },
      });
      await c.d.audit.recordNow({
        action: 'backup.verify',
        actor: o.actor,
        outcome: 'success',
        targets: { target: b.target, backup: b.id },
      });
      return {
        id: b.id,
        target: b.target,
        ok: true as const,
        members: manifest.members.length,
        plainSize: sidecar.plainSize,
        durationMs: Math.round(performance.now() - t0),
      };
    } catch (e) {
      const code = isAppError(e) ? e.code : 'BACKUP_VERIFY_FAILED';
      if (o.signal?.aborted) {
        // stopped (SIGTERM, shutdown): says nothing about the backup
        await c.d.audit
          .recordNow({
            action: 'backup.verify',
            actor: o.actor,
            outcome: 'failure',
            reason: code,
            targets: { target: b.target, backup: b.id },
          })
          .catch(() => undefined);
        throw e;
      }
      await recordCheck(c.db, {
        backupId: b.id,
        kind: o.kind ?? 'verify',
        startedAt: started,
        endedAt: c.d.clock.nowMs(),
        ok: false,
        error: `${code}: ${(e as Error).message}`.slice(0, 2000),
      });
      await c.db.updateTable('backups').set({ error: code }).where('id', '=', b.id).execute();
      await c.d.audit
        .recordNow({
          action: 'backup.verify',
          actor: o.actor,
          outcome: 'failure',
          reason: code,
          targets: { target: b.target, backup: b.id },
        })
        .catch(() => undefined);
      await c.alert({
        kind: 'backup.verify-failed',
        severity: 'critical',
        message: `verification of backup ${b.id} at ${b.target} failed: ${code}: ${(e as Error).message}`,
        targets: { target: b.target, backup: b.id },
      });
      throw e;
    } finally {
      await t.close();
    }
  });
}

/** The weekly full verification: every complete backup (all seven slots) at every target. */
export async function verifyAll(
  c: BackupCore,
  o: { actor: string; progress?: Progress; signal?: AbortSignal },
): Promise<{ ok: number; failed: { id: string; error: string }[] }> {
  const all = (await listBackups(c.db)).filter((b) => b.state === 'complete');
  const failed: { id: string; error: string }[] = [];
  let ok = 0;
  for (const b of all) {
    if (o.signal?.aborted)
      throw new BackupError('BACKUP_ABORTED', `stopped after ${ok + failed.length} of ${all.length} backups`, {
        httpStatus: 503,
      });
    try {
      await verify(c, b.id, {
        actor: o.actor,
        kind: 'weekly',
        wait: true,
        ...(o.progress ? { progress: o.progress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      ok++;
    } catch (e) {
      failed.push({ id: b.id, error: isAppError(e) ? e.toLine() : (e as Error).message });
    }
  }
  if (failed.length)
    throw new BackupError('BACKUP_VERIFY_FAILED', `${failed.length} of ${all.length} backups failed verification`, {
      details: { ok, failed },
    });
  return { ok, failed };
}
