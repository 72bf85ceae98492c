import { openAppliance, type Appliance } from '../main.js';
import { processEnv, resolveDataDir, type Env } from '../config/index.js';
import { createLogger } from '../shared/logger.js';
import { AppError } from '../shared/errors.js';
import type { JobProgress, JobRunDetail } from '../jobs/index.js';
import {
  BACKUP_JOB,
  DRILL_JOB,
  VERIFY_JOB,
  backupErrors,
  publicChange,
  slotName,
  type AddTargetInput,
  type BackupService,
  type RunReport,
} from '../backup/index.js';
import { Client, clientFromEnv } from './client.js';
import { localActor } from './output.js';

/**
 * What the operator verbs (`coffre backup …`) do, behind one interface with two implementations:
 * local (the appliance's data directory, audited as `local:<os-user>`) and remote (a running
 * appliance through /api/v1/backup with the operator's own token, audited as that user). Both
 * return the same objects, so a verb prints the same JSON either way.
 *
 * Mode: `--data-dir` or `COFFRE_DATA_DIR` → local; else `COFFRE_URL` → remote; else local (./data).
 */
export type VerifyResult = Awaited<ReturnType<BackupService['verify']>>;
export type DrillResult = Exclude<Awaited<ReturnType<BackupService['drill']>>, { skipped: unknown }>;
export interface TargetOut {
  name: string;
  type: string;
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  distanceKm: number;
  hostKey: string | null;
}
export interface TargetListItem extends TargetOut {
  allowed: boolean;
  problems: string[];
  createdAt: string | null;
}
export interface EscrowOut {
  fingerprint: string;
  userIds: string[];
  algorithm: string;
  expiresAt: string | null;
  createdAt: string | null;
}
export interface BackupOut {
  id: string;
  target: string;
  createdAt: string | null;
  slot: number;
  slotName: string;
  state: string;
  plainSize: number | null;
  size: number | null;
  parts: number | null;
  verifiedAt: string | null;
  error: string | null;
}
/** A job run as `backup status` prints it. */
export interface RunStatus {
  runId: number;
  job: string;
  actor: string;
  startedAt: string | null;
  endedAt: string | null;
  outcome: string;
  progress: JobProgress | null;
  result: unknown;
  error: string | null;
  errorCode: string | null;
}
/** A change request (two-person rule, src/backup/requests.ts) as the CLI prints it. */
export interface RequestOut {
  id: string;
  kind: string;
  change: Record<string, unknown>;
  digest: string;
  summary: string;
  state: string;
  requestedBy: string;
  requestedByName: string | null;
  requestedAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedByName: string | null;
  decidedAt: string | null;
  reason: string | null;
}
/** What a change to targets or escrow keys answers through the API: a request awaiting an admin. */
export interface PendingOut {
  status: 'pending';
  request: RequestOut;
}
export const isPending = (x: unknown): x is PendingOut =>
  !!x && typeof x === 'object' && (x as { status?: unknown }).status === 'pending';

export interface LastDrillOut {
  backupId: string;
  startedAt: string;
  endedAt: string;
  ok: boolean;
  rtoMs: number | null;
  error: string | null;
  site: string | null;
}

export interface Started {
  status: 'started';
  job: string;
  runId: number;
}
type Progress = (p: JobProgress) => void;

/**
 * Changes to targets and escrow keys: applied at once locally (alerted), a pending request
 * remotely (an admin other than the caller approves it: `request approve`).
 */
export interface BackupOps {
  addTarget(t: AddTargetInput): Promise<TargetOut | PendingOut>;
  listTargets(): Promise<TargetListItem[]>;
  removeTarget(name: string): Promise<{ deleted: string[] } | PendingOut>;
  addEscrow(key: Uint8Array): Promise<EscrowOut | PendingOut>;
  listEscrow(): Promise<EscrowOut[]>;
  removeEscrow(fingerprint: string): Promise<{ fingerprint: string } | PendingOut>;
  expireEscrow(fingerprint: string, at: number): Promise<{ fingerprint: string; expiresAt: string } | PendingOut>;
  listRequests(all: boolean): Promise<RequestOut[]>;
  /** the latest drill here and on the secondary site (locally: the targets' reports are read first) */
  lastDrills(): Promise<{ local: LastDrillOut | null; secondary: LastDrillOut | null }>;
  /** remote only: an admin's token, never the requester's */
  approveRequest(id: string): Promise<{ request: RequestOut; result: unknown }>;
  rejectRequest(id: string, reason: string | null): Promise<{ request: RequestOut }>;
  list(all: boolean): Promise<BackupOut[]>;
  /** `signal`: stop at the next safe point (local), or stop following the run (remote) */
  run(progress: Progress, signal?: AbortSignal): Promise<RunReport>;
  verify(id: string, progress: Progress, signal?: AbortSignal): Promise<VerifyResult>;
  drill(progress: Progress, signal?: AbortSignal): Promise<DrillResult>;
  /** starts a job and returns at once (`--no-wait`); remote only */
  start(job: 'run' | 'verify' | 'drill', id?: string): Promise<Started>;
  /** one run of a backup job; with `follow`, waits for its end and fails as it failed */
  status(runId: number, follow: boolean, progress: Progress): Promise<RunStatus>;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const round1 = (km: number) => Math.round(km * 10) / 10;
const BACKUP_JOBS: readonly string[] = [BACKUP_JOB, VERIFY_JOB, DRILL_JOB];

/** Runs `fn` with the ops of the mode the options and environment choose (see above). */
export async function withBackupOps<T>(
  o: { dataDir?: string | undefined },
  fn: (ops: BackupOps) => Promise<T>,
  x: { notice?: (m: string) => void; env?: Env } = {},
): Promise<T> {
  const env = x.env ?? processEnv();
  if (o.dataDir === undefined && !env.COFFRE_DATA_DIR && env.COFFRE_URL)
    return fn(remoteOps(clientFromEnv({ needToken: true, env })));
  const a = await openAppliance({
    dataDir: resolveDataDir(o.dataDir),
    log: createLogger({ level: 'warn', destination: 'stderr' }),
  });
  try {
    return await fn(localOps(a, x.notice));
  } finally {
    await a.close();
  }
}

function statusOf(r: JobRunDetail): RunStatus {
  return {
    runId: r.id,
    job: r.job,
    actor: r.actor,
    startedAt: iso(r.startedAt),
    endedAt: iso(r.endedAt),
    outcome: r.outcome,
    progress: r.progress,
    result: r.result,
    error: r.error,
    errorCode: r.errorCode,
  };
}

/** A finished run as its verb reports it: the result, or the error it failed with (same code, details). */
function outcomeOf<T>(r: {
  outcome: string;
  result: unknown;
  error: string | null;
  errorCode: string | null;
  errorDetails: unknown;
  runId: number;
}): T {
  if (r.outcome === 'succeeded') return r.result as T;
  if (r.outcome === 'abandoned')
    throw new AppError('RUN_ABANDONED', `run ${r.runId} was abandoned: the process running it stopped`, {
      hint: 'start it again',
    });
  const code = r.errorCode ?? 'JOB_FAILED';
  const [message, hint] = (r.error ?? `run ${r.runId} failed`)
    .replace(new RegExp(`^${code}: `), '')
    .split(' — ', 2) as [string, string | undefined];
  throw new AppError(code, message, { details: r.errorDetails, ...(hint ? { hint } : {}) });
}

function localOps(a: Appliance, notice: (m: string) => void = () => undefined): BackupOps {
  const actor = localActor();
  const b = a.backup;
  const follow = async (runId: number, progress: Progress): Promise<JobRunDetail> => {
    for (;;) {
      const r = await a.scheduler.runById(runId);
      if (!r || !BACKUP_JOBS.includes(r.job)) throw errors404(runId);
      if (r.progress) progress(r.progress);
      if (r.outcome !== 'running') return r;
      await new Promise((res) => setTimeout(res, 1000));
    }
  };
  return {
    async addTarget(t) {
      const r = await b.addTarget(t, actor);
      await b.alertLocalChange(actor, `added target ${r.name} (${r.url})`);
      return {
        name: r.name,
        type: r.type,
        url: r.url,
        jurisdiction: r.jurisdiction,
        lat: r.lat,
        lon: r.lon,
        distanceKm: round1(r.distanceKm),
        hostKey: r.hostKey,
      };
    },
    async listTargets() {
      return (await b.listTargets()).map((t) => {
        const v = b.geoCheck(t);
        return {
          name: t.name,
          type: t.type,
          url: t.url,
          jurisdiction: t.jurisdiction,
          lat: t.lat,
          lon: t.lon,
          distanceKm: round1(v.distanceKm),
          allowed: v.ok,
          problems: v.problems,
          hostKey: t.hostKey,
          createdAt: iso(t.createdAt),
        };
      });
    },
    async removeTarget(name) {
      const r = await b.removeTarget(name, actor);
      await b.alertLocalChange(actor, `removed target ${name}`);
      return r;
    },
    async addEscrow(key) {
      const k = await b.addEscrow(key, actor);
      await b.alertLocalChange(actor, `added escrow key ${k.fingerprint}`);
      return {
        fingerprint: k.fingerprint,
        userIds: k.userIds,
        algorithm: k.algorithm,
        expiresAt: iso(k.expiresAt),
        createdAt: iso(k.createdAt),
      };
    },
    async listEscrow() {
      return (await b.listEscrow()).map((k) => ({
        fingerprint: k.fingerprint,
        userIds: k.userIds,
        algorithm: k.algorithm,
        expiresAt: iso(k.expiresAt),
        createdAt: iso(k.createdAt),
      }));
    },
    async removeEscrow(fingerprint) {
      const r = await b.removeEscrow(fingerprint, actor);
      await b.alertLocalChange(actor, `removed escrow key ${r.fingerprint}`);
      return r;
    },
    async expireEscrow(fingerprint, at) {
      const r = await b.expireEscrow(fingerprint, at, actor);
      await b.alertLocalChange(actor, `escrow key ${r.fingerprint} expires at ${iso(r.expiresAt)!}`);
      return { fingerprint: r.fingerprint, expiresAt: iso(r.expiresAt)! };
    },
    async listRequests(all) {
      return (await b.listRequests({ all })).map((r) => ({
        id: r.id,
        kind: r.kind,
        change: publicChange(r.change),
        digest: r.digest,
        summary: r.summary,
        state: r.state,
        requestedBy: r.requestedBy,
        requestedByName: null,
        requestedAt: iso(r.requestedAt)!,
        expiresAt: iso(r.expiresAt)!,
        decidedBy: r.decidedBy,
        decidedByName: null,
        decidedAt: iso(r.decidedAt),
        reason: r.reason,
      }));
    },
    async lastDrills() {
      await b.collectSecondaryDrills();
      const l = await b.lastDrills();
      const out = (x: (typeof l)['local']): LastDrillOut | null =>
        x
          ? {
              backupId: x.backupId,
              startedAt: iso(x.startedAt)!,
              endedAt: iso(x.endedAt)!,
              ok: x.ok,
              rtoMs: x.rtoMs,
              error: x.error,
              site: x.site,
            }
          : null;
      return { local: out(l.local), secondary: out(l.secondary) };
    },
    approveRequest: () => Promise.reject(notLocal()),
    rejectRequest: () => Promise.reject(notLocal()),
    async list(all) {
      return (await b.list({ includeDeleted: all })).map((x) => ({
        id: x.id,
        target: x.target,
        createdAt: iso(x.createdAt),
        slot: x.slot,
        slotName: slotName(x.slot),
        state: x.state,
        plainSize: x.plainSize,
        size: x.size,
        parts: x.parts,
        verifiedAt: iso(x.verifiedAt),
        error: x.error,
      }));
    },
    async run(progress, signal) {
      return (
        await a.scheduler.run<RunReport>(BACKUP_JOB, {
          trigger: 'cli',
          actor,
          onProgress: progress,
          onNotice: notice,
          ...(signal ? { signal } : {}),
        })
      ).result;
    },
    verify: (id, progress, signal) => b.verify(id, { actor, progress, ...(signal ? { signal } : {}) }),
    async drill(progress, signal) {
      const r = await b.drill({ actor, progress, ...(signal ? { signal } : {}) });
      if ('skipped' in r) throw backupErrors.notFoundBackup('latest');
      return r;
    },
    start: () =>
      Promise.reject(
        new AppError(
          'USAGE',
          '--no-wait needs a running appliance: set COFFRE_URL and COFFRE_TOKEN (without --data-dir)',
          { exitCode: 2 },
        ),
      ),
    async status(runId, wait, progress) {
      const r = wait ? await follow(runId, progress) : await a.scheduler.runById(runId);
      if (!r || !BACKUP_JOBS.includes(r.job)) throw errors404(runId);
      if (wait) outcomeOf({ ...r, runId: r.id });
      return statusOf(r);
    },
  };
}

/** A decision names a person with the admin role: it is taken with that person's token, not as the local OS user. */
const notLocal = () =>
  new AppError(
    'USAGE',
    "a change request is approved or rejected by a person with the admin role, through the appliance: set COFFRE_URL and COFFRE_TOKEN (an admin's token) without --data-dir",
    { exitCode: 2, hint: 'see docs/disaster-recovery.md "Two-person rule"' },
  );

const errors404 = (runId: number) =>
  new AppError('RUN_NOT_FOUND', `no backup run ${runId}`, {
    httpStatus: 404,
    hint: 'see `coffre backup runs` in the console, or the runId a verb printed',
  });

interface ApiRun {
  id: number;
  job: string;
  actor: string;
  startedAt: string;
  endedAt: string | null;
  outcome: string;
  progress: JobProgress | null;
  error: string | null;
  result: unknown;
  errorCode: string | null;
  errorDetails: unknown;
}

function remoteOps(c: Client): BackupOps {
  const follow = async (runId: number, progress: Progress, signal?: AbortSignal): Promise<ApiRun> => {
    for (;;) {
      if (signal?.aborted)
        throw new AppError('INTERRUPTED', `stopped following run ${runId}; it goes on at the appliance`, {
          hint: `follow it again with \`coffre backup status ${runId}\``,
        });
      const r = await c.json<ApiRun>('GET', `/backup/runs/${runId}`);
      if (r.progress) progress(r.progress);
      if (r.outcome !== 'running') return r;
      await new Promise((res) => setTimeout(res, 1000));
    }
  };
  const startJob: BackupOps['start'] = (job, id) =>
    c.json<Started>(
      'POST',
      job === 'run'
        ? '/backup/run'
        : job === 'drill'
          ? '/backup/drill'
          : `/backup/backups/${encodeURIComponent(id ?? 'latest')}/verify`,
      {},
    );
  const runToEnd = async <T>(
    job: 'run' | 'verify' | 'drill',
    progress: Progress,
    signal?: AbortSignal,
    id?: string,
  ): Promise<T> => {
    const s = await startJob(job, id);
    const r = await follow(s.runId, progress, signal);
    return outcomeOf<T>({ ...r, runId: r.id });
  };
  const escrowOut = (k: EscrowOut): EscrowOut => ({
    fingerprint: k.fingerprint,
    userIds: k.userIds,
    algorithm: k.algorithm,
    expiresAt: k.expiresAt,
    createdAt: k.createdAt,
  });
  return {
    async addTarget(t) {
      if (t.passwordFile)
        throw new AppError(
          'USAGE',
          '--password-file is read on the appliance: register password targets locally, or use --identity',
          { exitCode: 2 },
        );
      const body = {
        name: t.name,
        type: t.type,
        url: t.url,
        jurisdiction: t.jurisdiction,
        lat: t.lat,
        lon: t.lon,
        ...(t.hostKey ? { hostKey: t.hostKey } : {}),
        ...(t.identityFile ? { identityFile: t.identityFile } : {}),
      };
      return c.json<PendingOut>('POST', '/backup/targets', body);
    },
    async listTargets() {
      const { targets } = await c.json<{ targets: TargetListItem[] }>('GET', '/backup/targets');
      return targets.map((t) => ({
        name: t.name,
        type: t.type,
        url: t.url,
        jurisdiction: t.jurisdiction,
        lat: t.lat,
        lon: t.lon,
        distanceKm: t.distanceKm,
        allowed: t.allowed,
        problems: t.problems ?? [],
        hostKey: t.hostKey,
        createdAt: t.createdAt,
      }));
    },
    removeTarget: (name) => c.json<PendingOut>('DELETE', `/backup/targets/${encodeURIComponent(name)}`),
    addEscrow: (key) => c.json<PendingOut>('POST', '/backup/escrow', { publicKey: Buffer.from(key).toString('utf8') }),
    async listEscrow() {
      return (await c.json<{ keys: EscrowOut[] }>('GET', '/backup/escrow')).keys.map(escrowOut);
    },
    removeEscrow: (fingerprint) => c.json<PendingOut>('DELETE', `/backup/escrow/${encodeURIComponent(fingerprint)}`),
    expireEscrow: (fingerprint, at) =>
      c.json<PendingOut>('POST', `/backup/escrow/${encodeURIComponent(fingerprint)}/expiry`, {
        expiresAt: new Date(at).toISOString(),
      }),
    async listRequests(all) {
      // operators and auditors read /backup/requests, admins /backup/approvals: the same list
      const q = all ? '?all=true' : '';
      try {
        return (await c.json<{ requests: RequestOut[] }>('GET', `/backup/requests${q}`)).requests;
      } catch (e) {
        if (!(e instanceof AppError) || e.httpStatus !== 403) throw e;
        return (await c.json<{ requests: RequestOut[] }>('GET', `/backup/approvals${q}`)).requests;
      }
    },
    lastDrills: () =>
      c.json<{ local: LastDrillOut | null; secondary: LastDrillOut | null }>('GET', '/backup/drills/last'),
    async approveRequest(id) {
      // the digest of the change as listed now: approved only if it is still exactly that change
      const r = (await this.listRequests(true)).find((x) => x.id === id);
      if (!r)
        throw new AppError('REQUEST_NOT_FOUND', `no change request ${id}`, {
          httpStatus: 404,
          hint: 'see `coffre backup request list`',
        });
      return c.json<{ request: RequestOut; result: unknown }>(
        'POST',
        `/backup/requests/${encodeURIComponent(id)}/approve`,
        { digest: r.digest },
      );
    },
    rejectRequest: (id, reason) =>
      c.json<{ request: RequestOut }>(
        'POST',
        `/backup/requests/${encodeURIComponent(id)}/reject`,
        reason ? { reason } : {},
      ),
    async list(all) {
      const { backups } = await c.json<{ backups: BackupOut[] }>('GET', `/backup/backups${all ? '?all=true' : ''}`);
      return backups.map((x) => ({
        id: x.id,
        target: x.target,
        createdAt: x.createdAt,
        slot: x.slot,
        slotName: x.slotName,
        state: x.state,
        plainSize: x.plainSize,
        size: x.size,
        parts: x.parts,
        verifiedAt: x.verifiedAt,
        error: x.error,
      }));
    },
    run: (progress, signal) => runToEnd<RunReport>('run', progress, signal),
    verify: (id, progress, signal) => runToEnd<VerifyResult>('verify', progress, signal, id),
    async drill(progress, signal) {
      const r = await runToEnd<DrillResult | { skipped: unknown }>('drill', progress, signal);
      if ('skipped' in r) throw backupErrors.notFoundBackup('latest');
      return r;
    },
    start: startJob,
    async status(runId, wait, progress) {
      const r = wait ? await follow(runId, progress) : await c.json<ApiRun>('GET', `/backup/runs/${runId}`);
      if (wait) outcomeOf({ ...r, runId: r.id });
      return {
        runId: r.id,
        job: r.job,
        actor: r.actor,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        outcome: r.outcome,
        progress: r.progress,
        result: r.result,
        error: r.error,
        errorCode: r.errorCode,
      };
    },
  };
}
