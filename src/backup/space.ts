import type { BackupCore } from './core.js';
import { listTargets } from './catalogue.js';

export type TargetSpaceReport =
  { target: string; free: number; total: number } | { target: string; free: null; total: null };

/**
 * The space at each registered target (mounted path: statfs of its directory; SFTP: the
 * `statvfs@openssh.com` extension), for the monitoring sampler. One attempt per target (no
 * retries), bounded by the target's connect and stall deadlines; an unreachable target, or one that
 * cannot tell (an SFTP server without the extension), is reported with null figures.
 */
export async function targetSpace(c: BackupCore): Promise<TargetSpaceReport[]> {
  const out: TargetSpaceReport[] = [];
  for (const info of await listTargets(c.db)) {
    let t: ReturnType<BackupCore['open']> | undefined;
    try {
      t = c.open(info, undefined, 0);
      const s = await t.space();
      out.push(
        s ? { target: info.name, free: s.free, total: s.total } : { target: info.name, free: null, total: null },
      );
    } catch (e) {
      c.d.log.warn({ err: e, target: info.name }, 'backup target space could not be measured');
      out.push({ target: info.name, free: null, total: null });
    } finally {
      await t?.close().catch(() => undefined);
    }
  }
  return out;
}
