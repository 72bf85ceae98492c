import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isAppError } from '../shared/errors.js';
import { getTarget, recordCheck } from './catalogue.js';
import type { BackupCore } from './core.js';
import { backupErrors } from './errors.js';
import { restoreInto, sampleDocuments } from './restore.js';
import type { Progress } from './types.js';
import { find } from './verify.js';

/**
 * The weekly restore drill: restores the newest backup into a scratch directory with this
 * appliance's HSM, checks the restored counts against the backup's manifest, decrypts sample
 * documents and compares their SHA-256, records the time taken (the RTO) and removes the copy.
 */
export async function drill(
  c: BackupCore,
  o: { actor: string; progress?: Progress; wait?: boolean; skipWhenNone?: boolean; signal?: AbortSignal },
): Promise<
  | {
      backupId: string;
      target: string;
      rtoMs: number;
      documents: number;
      versions: number;
      blobs: number;
      samples: number;
    }
  | { skipped: string }
> {
  return c.withLock(o.wait ?? false, async () => {
    const b = await find(c, 'latest').catch((e: unknown) => {
      if (o.skipWhenNone && isAppError(e) && e.code === 'BACKUP_NOT_FOUND') return null;
      throw e;
    });
    if (!b) return { skipped: 'no complete backup yet' };
    const info = await getTarget(c.db, b.target);
    if (!info) throw backupErrors.usage(`backup ${b.id} is at target ${b.target}, which is no longer registered`);
    const started = c.d.clock.nowMs();
    const t0 = performance.now();
    const dir = path.join(c.scratch, `drill-${crypto.randomBytes(4).toString('hex')}`);
    const t = c.open(info);
    try {
      const r = await restoreInto({
        target: t,
        targetRef: c.targetRef(info),
        threads: c.cfg.workers,
        backup: b.id,
        dataDir: dir,
        keys: c.d.keys,
        keysSection: { ...c.d.config.keys },
        applianceId: c.d.config.applianceId,
        log: c.d.log,
        ...(o.progress ? { progress: o.progress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      const s = await sampleDocuments(dir, c.d.keys, c.cfg.drillSamples);
      const got = { documents: s.documents, versions: s.versions, blobs: r.blobs };
      if (
        got.documents !== r.expected.documents ||
        got.versions !== r.expected.versions ||
        got.blobs !== r.expected.blobs
      ) {
        throw backupErrors.integrity(
          `restored ${JSON.stringify(got)}, the backup recorded ${JSON.stringify(r.expected)}`,
        );
      }
      const rtoMs = Math.round(performance.now() - t0);
      const details = { rtoMs, restoreMs: r.durationMs, ...got, samples: s.checked, plainSize: r.plainSize };
      await recordCheck(c.db, {
        backupId: b.id,
        kind: 'drill',
        startedAt: started,
        endedAt: c.d.clock.nowMs(),
        ok: true,
        details,
      });
      await c.d.audit.recordNow({
        action: 'backup.drill',
        actor: o.actor,
        outcome: 'success',
        targets: { target: b.target, backup: b.id },
      });
      return { backupId: b.id, target: b.target, rtoMs, ...got, samples: s.checked };
    } catch (e) {
      const code = isAppError(e) ? e.code : 'BACKUP_DRILL_FAILED';
      if (o.signal?.aborted) {
        // stopped (SIGTERM, shutdown): says nothing about the backup
        await c.d.audit
          .recordNow({
            action: 'backup.drill',
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
        kind: 'drill',
        startedAt: started,
        endedAt: c.d.clock.nowMs(),
        ok: false,
        error: `${code}: ${(e as Error).message}`.slice(0, 2000),
      });
      await c.d.audit
        .recordNow({
          action: 'backup.drill',
          actor: o.actor,
          outcome: 'failure',
          reason: code,
          targets: { target: b.target, backup: b.id },
        })
        .catch(() => undefined);
      await c.alert({
        kind: 'backup.drill-failed',
        severity: 'critical',
        message: `the restore drill of backup ${b.id} failed: ${code}: ${(e as Error).message}`,
        targets: { target: b.target, backup: b.id },
      });
      throw e;
    } finally {
      await t.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
