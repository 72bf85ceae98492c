import fs from 'node:fs/promises';
import path from 'node:path';
import type { HealthCheck } from '../http/index.js';
import type { ForwarderStatus } from '../audit/syslog/forwarder.js';
import type { Clock } from '../shared/clock.js';

/**
 * The blob store directory can take a write: a small probe file is written, synced and removed
 * (a missing, read-only or full volume fails); an object store must answer a signed request.
 */
export function storageHealth(dir: string | { stat(id: string): Promise<unknown> }): HealthCheck {
  return {
    name: 'storage',
    check: async () => {
      // an object store: it answers a signed request (a missing blob's metadata)
      if (typeof dir !== 'string') {
        await dir.stat('ready-probe');
        return { ok: true };
      }
      const probe = path.join(dir, `.ready-${process.pid}`);
      const fh = await fs.open(probe, 'w');
      try {
        await fh.writeFile('ok');
        await fh.sync();
      } finally {
        await fh.close();
        await fs.rm(probe, { force: true });
      }
      return { ok: true };
    },
  };
}

/**
 * The audit trail's real-time export: down once the collector has been unreachable for
 * `alertAfterMs` (records wait in the database meanwhile). Up when export is disabled, and on a
 * node that does not hold the export lease (another node sends).
 */
export function auditExportHealth(
  status: (() => ForwarderStatus) | undefined,
  alertAfterMs: number,
  clock: Clock,
): HealthCheck {
  return {
    name: 'audit-export',
    check: async () => {
      if (!status) return { ok: true, detail: 'disabled' };
      const s = status();
      if (!s.leader || s.connected || s.downSince === null) return { ok: true };
      const downFor = clock.nowMs() - s.downSince;
      return downFor < alertAfterMs
        ? { ok: true, detail: `reconnecting (${s.lastError ?? 'unknown'})` }
        : {
            ok: false,
            detail: `collector unreachable for ${Math.round(downFor / 1000)} s (${s.lastError ?? 'unknown'})`,
          };
    },
  };
}
