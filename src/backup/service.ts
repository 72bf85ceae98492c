import type { TargetInfo } from './catalogue.js';
import { listBackups, listTargets } from './catalogue.js';
import { BackupCore } from './core.js';
import { drill } from './drill.js';
import { addEscrow, expireEscrow, listEscrow, removeEscrow } from './escrow.js';
import { slotName } from './retention.js';
import { run } from './runs.js';
import { targetSpace } from './space.js';
import { destroy } from './shred.js';
import { addTarget, removeTarget } from './targets-admin.js';
import {
  alertLocalChange,
  approveRequest,
  listRequests,
  rejectRequest,
  requestChange,
  type ChangeInput,
  type Person,
} from './requests.js';
import type { BackupTarget } from './targets/types.js';
import type { AddTargetInput, BackupDeps, Progress, RunReport } from './types.js';
import { find, verify, verifyAll } from './verify.js';
import { watchdog } from './watchdog.js';
import { collectSecondaryDrills } from './secondary.js';

export type { ChangeInput, ChangeRequest, Person } from './requests.js';
export type { AddTargetInput, BackupDeps, BackupServiceConfig, Progress, RunReport, TargetRunReport } from './types.js';
export { fmtBytes } from './types.js';

/**
 * The backup module's surface for routes, jobs and the CLI. Each part lives in its own file:
 * targets (./targets-admin.ts), escrow keys (./escrow.ts), runs (./runs.ts), verification
 * (./verify.ts), the restore drill (./drill.ts), destruction and retention (./shred.ts), the
 * dead-man watchdog (./watchdog.ts); what they share is ./core.ts. One operation on targets at a
 * time across processes (database lease).
 */
export class BackupService {
  readonly core: BackupCore;
  constructor(readonly d: BackupDeps) {
    this.core = new BackupCore(d);
  }

  geoCheck(t: { jurisdiction: string; lat: number; lon: number }) {
    return this.core.geoCheck(t);
  }
  addTarget(i: AddTargetInput, actor: string) {
    return addTarget(this.core, i, actor);
  }
  listTargets(): Promise<TargetInfo[]> {
    return listTargets(this.core.db);
  }
  removeTarget(name: string, actor: string) {
    return removeTarget(this.core, name, actor);
  }
  /** free and total bytes at each registered target (null figures: unreachable or cannot tell) */
  targetSpace() {
    return targetSpace(this.core);
  }

  addEscrow(keyText: string | Uint8Array, actor: string) {
    return addEscrow(this.core, keyText, actor);
  }
  listEscrow() {
    return listEscrow(this.core);
  }
  removeEscrow(fingerprint: string, actor: string) {
    return removeEscrow(this.core, fingerprint, actor);
  }
  expireEscrow(fingerprint: string, at: number, actor: string) {
    return expireEscrow(this.core, fingerprint, at, actor);
  }

  /** two-person rule (./requests.ts): a change asked for through the API waits for another admin */
  requestChange(i: ChangeInput, who: Person) {
    return requestChange(this.core, i, who);
  }
  listRequests(o: { all?: boolean } = {}) {
    return listRequests(this.core, o);
  }
  approveRequest(id: string, digest: string, who: Person) {
    return approveRequest(this.core, id, digest, who);
  }
  rejectRequest(id: string, reason: string | null, who: Person) {
    return rejectRequest(this.core, id, reason, who);
  }
  alertLocalChange(actor: string, what: string) {
    return alertLocalChange(this.core, actor, what);
  }

  run(o: { actor: string; progress?: Progress; signal?: AbortSignal; wait?: boolean }): Promise<RunReport> {
    return run(this.core, o);
  }
  find(idOrLatest: string, target?: string) {
    return find(this.core, idOrLatest, target);
  }
  verify(
    idOrLatest: string,
    o: { actor: string; kind?: string; progress?: Progress; wait?: boolean; signal?: AbortSignal },
  ) {
    return verify(this.core, idOrLatest, o);
  }
  verifyAll(o: { actor: string; progress?: Progress; signal?: AbortSignal }) {
    return verifyAll(this.core, o);
  }
  drill(o: { actor: string; progress?: Progress; wait?: boolean; skipWhenNone?: boolean; signal?: AbortSignal }) {
    return drill(this.core, o);
  }
  destroy(t: BackupTarget, target: string, id: string, reason: string, actor: string) {
    return destroy(this.core, t, target, id, reason, actor);
  }
  /** reads and records the signed reports of drills run on the secondary site (./secondary.ts) */
  collectSecondaryDrills() {
    return collectSecondaryDrills(this.core);
  }
  /** the latest local drill and the latest drill on the secondary site, as recorded */
  async lastDrills() {
    const one = async (kind: string) => {
      const r = await this.core.db
        .selectFrom('backup_checks')
        .selectAll()
        .where('kind', '=', kind)
        .orderBy('started_at', 'desc')
        .orderBy('id', 'desc')
        .executeTakeFirst();
      if (!r) return null;
      const d = (r.details ? JSON.parse(r.details) : {}) as {
        rtoMs?: number;
        site?: string;
        target?: string;
        reportId?: string;
      };
      return {
        backupId: r.backup_id,
        startedAt: Number(r.started_at),
        endedAt: Number(r.ended_at),
        ok: Number(r.ok) === 1,
        rtoMs: typeof d.rtoMs === 'number' ? d.rtoMs : null,
        error: r.error,
        site: d.site ?? null,
        reportId: d.reportId ?? null,
      };
    };
    return { local: await one('drill'), secondary: await one('drill-secondary') };
  }
  watchdog(o: { actor: string }) {
    return watchdog(this.core, o);
  }

  async list(o: { includeDeleted?: boolean } = {}) {
    const rows = await listBackups(this.core.db, o);
    return rows.map((b) => ({ ...b, slotName: slotName(b.slot) }));
  }

  /** Opens a registered target with the configured retries and bandwidth limit (tests, the CLI). */
  open(t: Parameters<BackupCore['open']>[0], signal?: AbortSignal): BackupTarget {
    return this.core.open(t, signal);
  }
}
