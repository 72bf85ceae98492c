import { ErrorReply, errorReplies, JobRunSchema, Nullable } from '../http/index.js';
import { isoOrNull } from '../shared/time.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import type { Scheduler } from '../jobs/index.js';
import { errors, isAppError } from '../shared/errors.js';
import { BACKUP_JOB, DRILL_JOB, VERIFY_JOB, WATCHDOG_JOB } from './jobs.js';
import type { BackupService, ChangeInput, ChangeRequest, Person } from './service.js';
import { publicChange } from './requests.js';

const tags = ['backup'];
const errs = errorReplies(400, 401, 403, 404, 409, 503);

const BackupSchema = Type.Object(
  {
    id: Type.String(),
    target: Type.String(),
    slot: Type.Integer(),
    slotName: Type.String(),
    createdAt: Type.String(),
    state: Type.String(),
    plainSize: Nullable(Type.Integer()),
    size: Nullable(Type.Integer()),
    parts: Nullable(Type.Integer()),
    members: Nullable(Type.Integer()),
    verifiedAt: Nullable(Type.String()),
    error: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const TargetSchema = Type.Object(
  {
    name: Type.String(),
    type: Type.String(),
    url: Type.String(),
    jurisdiction: Type.String(),
    lat: Type.Number(),
    lon: Type.Number(),
    distanceKm: Type.Number(),
    allowed: Type.Boolean(),
    /** why the policy no longer allows the site (listing only) */
    problems: Type.Optional(Type.Array(Type.String())),
    hostKey: Nullable(Type.String()),
    createdAt: Type.String(),
    createdBy: Type.String(),
  },
  { additionalProperties: false },
);
const AddTargetBody = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
    type: Type.Union([Type.Literal('sftp'), Type.Literal('path'), Type.Literal('s3')]),
    url: Type.String({ minLength: 1, maxLength: 2000 }),
    jurisdiction: Type.String({ pattern: '^[A-Z]{2}$' }),
    lat: Type.Number({ minimum: -90, maximum: 90 }),
    lon: Type.Number({ minimum: -180, maximum: 180 }),
    hostKey: Type.Optional(Type.String({ maxLength: 4000 })),
    identityFile: Type.Optional(Type.String({ maxLength: 4000 })),
  },
  { additionalProperties: false },
);
const EscrowSchema = Type.Object(
  {
    fingerprint: Type.String(),
    userIds: Type.Array(Type.String()),
    algorithm: Type.String(),
    expiresAt: Nullable(Type.String()),
    createdAt: Type.String(),
    createdBy: Type.String(),
    createdByName: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const AddEscrowBody = Type.Object(
  { publicKey: Type.String({ minLength: 1, maxLength: 200_000 }) },
  { additionalProperties: false },
);
const DrillSchema = Type.Object(
  {
    backupId: Type.String(),
    target: Nullable(Type.String()),
    startedAt: Type.String(),
    endedAt: Type.String(),
    ok: Type.Boolean(),
    rtoMs: Nullable(Type.Number()),
    documents: Nullable(Type.Number()),
    versions: Nullable(Type.Number()),
    blobs: Nullable(Type.Number()),
    samples: Nullable(Type.Number()),
    plainSize: Nullable(Type.Number()),
    error: Nullable(Type.String()),
    /** `local` (this appliance) or `secondary` (a signed report from the secondary site, docs/disaster-recovery.md) */
    where: Type.String(),
    /** the secondary site's name */
    site: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const LastDrill = Nullable(
  Type.Object(
    {
      backupId: Type.String(),
      startedAt: Type.String(),
      endedAt: Type.String(),
      ok: Type.Boolean(),
      rtoMs: Nullable(Type.Number()),
      error: Nullable(Type.String()),
      site: Nullable(Type.String()),
    },
    { additionalProperties: false },
  ),
);
const RequestSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    /** the change exactly as it will be applied (an escrow key by fingerprint; its armored text is covered by the digest) */
    change: Type.Record(Type.String(), Type.Unknown()),
    /** hex SHA-256 of the canonical change: the approver sends back the digest they reviewed */
    digest: Type.String(),
    summary: Type.String(),
    state: Type.String(),
    requestedBy: Type.String(),
    requestedByName: Nullable(Type.String()),
    requestedAt: Type.String(),
    expiresAt: Type.String(),
    decidedBy: Nullable(Type.String()),
    decidedByName: Nullable(Type.String()),
    decidedAt: Nullable(Type.String()),
    reason: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
const Pending = Type.Object(
  { status: Type.Literal('pending'), request: RequestSchema },
  { additionalProperties: false },
);
const RequestId = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });
const Started = Type.Object(
  { status: Type.Literal('started'), job: Type.String(), runId: Type.Integer() },
  { additionalProperties: false },
);
const RunDetailSchema = Type.Object(
  {
    ...JobRunSchema.properties,
    result: Type.Unknown(),
    errorCode: Nullable(Type.String()),
    errorDetails: Type.Unknown(),
  },
  { additionalProperties: false },
);
const BACKUP_JOBS = [BACKUP_JOB, VERIFY_JOB, DRILL_JOB, WATCHDOG_JOB];

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}

/** The caller as the two-person rule sees them: the person (`user:<id>`) behind a session or a token. */
function personOf(req: FastifyRequest): Person {
  if (!req.actor) throw errors.unauthenticated();
  return { actor: req.actor.id, person: req.actor.userId ? `user:${req.actor.userId}` : req.actor.id };
}

/**
 * The backup operator's API (role `backup-operator`): list backups, targets and runs
 * (`backup:read`), start a backup or a verification (`backup:run`, answered 202 at once: follow it
 * in /backup/runs), ask for changes to targets and escrow keys (`backup:manage`, answered 202 with
 * a pending request), which another person with the admin role approves or rejects
 * (`backup:approve`, two-person rule: ./requests.ts).
 */
export function backupRoutes(service: BackupService, scheduler: Scheduler): FastifyPluginAsync {
  /**
   * Starts a job and answers with its run id (follow it at /backup/runs/{id}); 409 at once if it
   * (or another backup operation) is running.
   */
  const start = async (job: string, actor: string, params?: Record<string, string>) => {
    let started!: (id: number) => void;
    const id = new Promise<number>((r) => (started = r));
    const p = scheduler.run(job, {
      trigger: 'api',
      actor,
      onStarted: (runId) => started(runId),
      ...(params ? { params } : {}),
    });
    p.catch(() => undefined);
    const failed = p.then(
      () => null,
      (e: unknown) => e,
    );
    const first = await Promise.race([id, failed]);
    if (typeof first !== 'number') throw first ?? errors.notFound('run');
    const early = await Promise.race([failed, new Promise((r) => setTimeout(() => r(null), 250))]);
    if (early && isAppError(early) && (early.code === 'JOB_BUSY' || early.code === 'BACKUP_BUSY')) throw early;
    return { status: 'started' as const, job, runId: first };
  };

  return async (app0) => {
    const app = app0.withTypeProvider<TypeBoxTypeProvider>();
    /** user names for `user:<id>` actors (other actors, e.g. `local:root`, are shown as they are) */
    const usernamesOf = async (actors: string[]): Promise<Map<string, string>> => {
      const ids = [...new Set(actors.filter((a) => a.startsWith('user:')).map((a) => a.slice(5)))];
      if (!ids.length) return new Map();
      const rows = await service.d.db.db
        .selectFrom('users')
        .select(['id', 'username'])
        .where('id', 'in', ids)
        .execute();
      return new Map(rows.map((r) => [`user:${r.id}`, r.username]));
    };
    const requestOut = async (r: ChangeRequest) => {
      const names = await usernamesOf([r.requestedBy, ...(r.decidedBy ? [r.decidedBy] : [])]);
      return {
        id: r.id,
        kind: r.kind,
        change: publicChange(r.change),
        digest: r.digest,
        summary: r.summary,
        state: r.state,
        requestedBy: r.requestedBy,
        requestedByName: names.get(r.requestedBy) ?? null,
        requestedAt: isoOrNull(r.requestedAt)!,
        expiresAt: isoOrNull(r.expiresAt)!,
        decidedBy: r.decidedBy,
        decidedByName: r.decidedBy ? (names.get(r.decidedBy) ?? null) : null,
        decidedAt: isoOrNull(r.decidedAt),
        reason: r.reason,
      };
    };
    /** a change to targets or escrow keys: recorded for an admin's approval, answered 202 with the request */
    const ask = async (req: FastifyRequest, reply: FastifyReply, i: ChangeInput) => {
      const r = await service.requestChange(i, personOf(req));
      reply.code(202);
      return { status: 'pending' as const, request: await requestOut(r) };
    };
    const listSchema = {
      querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 200: Type.Object({ requests: Type.Array(RequestSchema) }), ...errs },
    };
    const listHandler = async (req: FastifyRequest) => ({
      requests: await Promise.all(
        (await service.listRequests({ all: (req.query as { all?: boolean }).all ?? false })).map(requestOut),
      ),
    });
    // pending (all=true: every recent) changes to targets and escrow keys: operators and auditors here, admins at /backup/approvals
    app.get(
      '/backup/requests',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'changes to targets and escrow keys awaiting approval (all=true: decided ones too)',
          ...listSchema,
        },
      },
      listHandler,
    );
    app.get(
      '/backup/approvals',
      {
        config: { permission: PERMISSIONS.backupApprove },
        schema: { tags, summary: 'the same list, for the admins who decide', ...listSchema },
      },
      listHandler,
    );
    app.post(
      '/backup/requests/:id/approve',
      {
        config: { permission: PERMISSIONS.backupApprove },
        schema: {
          tags,
          summary:
            "approve and apply another person's change, naming the digest reviewed (403 for the requester, 409 expired, decided or another digest)",
          params: RequestId,
          body: Type.Object({ digest: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ request: RequestSchema, result: Type.Unknown() }), ...errs },
        },
      },
      async (req) => {
        const r = await service.approveRequest(
          (req.params as { id: string }).id,
          (req.body as { digest: string }).digest,
          personOf(req),
        );
        return { request: await requestOut(r), result: r.result };
      },
    );
    app.post(
      '/backup/requests/:id/reject',
      {
        config: { permission: PERMISSIONS.backupApprove },
        schema: {
          tags,
          summary: "reject another person's change (nothing is changed)",
          params: RequestId,
          body: Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 500 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ request: RequestSchema }), ...errs },
        },
      },
      async (req) => ({
        request: await requestOut(
          await service.rejectRequest(
            (req.params as { id: string }).id,
            (req.body as { reason?: string }).reason ?? null,
            personOf(req),
          ),
        ),
      }),
    );

    app.get(
      '/backup/backups',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'backups in the catalogue, newest first (all=true: deleted and failed ones too)',
          querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 200: Type.Object({ backups: Type.Array(BackupSchema) }), ...errs },
        },
      },
      async (req) => ({
        backups: (await service.list({ includeDeleted: (req.query as { all?: boolean }).all ?? false })).map((b) => ({
          id: b.id,
          target: b.target,
          slot: b.slot,
          slotName: b.slotName,
          createdAt: isoOrNull(b.createdAt)!,
          state: b.state,
          plainSize: b.plainSize,
          size: b.size,
          parts: b.parts,
          members: b.members,
          verifiedAt: isoOrNull(b.verifiedAt),
          error: b.error,
        })),
      }),
    );

    app.get(
      '/backup/targets',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'registered targets and whether their site is allowed',
          response: { 200: Type.Object({ targets: Type.Array(TargetSchema) }), ...errs },
        },
      },
      async () => ({
        targets: (await service.listTargets()).map((t) => {
          const v = service.geoCheck(t);
          return {
            name: t.name,
            type: t.type,
            url: t.url,
            jurisdiction: t.jurisdiction,
            lat: t.lat,
            lon: t.lon,
            distanceKm: Math.round(v.distanceKm * 10) / 10,
            allowed: v.ok,
            problems: v.problems,
            hostKey: t.hostKey,
            createdAt: isoOrNull(t.createdAt)!,
            createdBy: t.createdBy,
          };
        }),
      }),
    );

    app.get(
      '/backup/runs',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'recent runs of the backup jobs, with progress',
          response: { 200: Type.Object({ runs: Type.Array(JobRunSchema) }), ...errs },
        },
      },
      async () => {
        const runs = (
          await Promise.all([BACKUP_JOB, VERIFY_JOB, DRILL_JOB, WATCHDOG_JOB].map((j) => scheduler.runs(j, 20)))
        )
          .flat()
          .sort((a, b) => b.startedAt - a.startedAt)
          .slice(0, 50);
        return {
          runs: runs.map((r) => ({
            id: r.id,
            job: r.job,
            trigger: r.trigger,
            actor: r.actor,
            startedAt: isoOrNull(r.startedAt)!,
            endedAt: isoOrNull(r.endedAt),
            outcome: r.outcome,
            progress: r.progress,
            error: r.error,
          })),
        };
      },
    );

    // escrow keys: the customer's offline OpenPGP recovery keys (public parts; the armored key itself is not sent)
    app.get(
      '/backup/escrow',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'registered escrow keys (fingerprint, user ids, when and by whom)',
          response: { 200: Type.Object({ keys: Type.Array(EscrowSchema) }), ...errs },
        },
      },
      async () => {
        const keys = await service.listEscrow();
        const names = await usernamesOf(keys.map((k) => k.createdBy));
        return {
          keys: keys.map((k) => ({
            fingerprint: k.fingerprint,
            userIds: k.userIds,
            algorithm: k.algorithm,
            expiresAt: isoOrNull(k.expiresAt),
            createdAt: isoOrNull(k.createdAt)!,
            createdBy: k.createdBy,
            createdByName: names.get(k.createdBy) ?? null,
          })),
        };
      },
    );

    // add an escrow key (as `coffre backup escrow add`): the armored public key is checked for GnuPG 2.2,
    // stored, and audited by its fingerprint; it is never echoed back nor logged
    app.post(
      '/backup/escrow',
      {
        config: { permission: PERMISSIONS.backupManage },
        schema: {
          tags,
          summary:
            'ask to register an escrow key (armored OpenPGP public key): 202 with a request an admin approves; 400 when GnuPG 2.2 could not read it, 409 when already registered',
          body: AddEscrowBody,
          response: { 202: Pending, ...errs },
        },
      },
      async (req, reply) =>
        ask(req, reply, { kind: 'escrow.add', publicKey: (req.body as Static<typeof AddEscrowBody>).publicKey }),
    );

    // stop encrypting to an escrow key (backups already encrypted to it stay readable by its holder)
    const Fingerprint = Type.Object({ fingerprint: Type.String({ pattern: '^[0-9A-Fa-f]{40,64}$' }) });
    app.delete(
      '/backup/escrow/:fingerprint',
      {
        config: { permission: PERMISSIONS.backupManage },
        schema: {
          tags,
          summary: 'ask to remove an escrow key (202: a request an admin approves)',
          params: Fingerprint,
          response: { 202: Pending, ...errs },
        },
      },
      async (req, reply) =>
        ask(req, reply, { kind: 'escrow.remove', fingerprint: (req.params as { fingerprint: string }).fingerprint }),
    );
    app.post(
      '/backup/escrow/:fingerprint/expiry',
      {
        config: { permission: PERMISSIONS.backupManage },
        schema: {
          tags,
          summary:
            'ask to stop encrypting backups to an escrow key from a date on (only brought forward; 202: a request an admin approves)',
          params: Fingerprint,
          body: Type.Object({ expiresAt: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
          response: { 202: Pending, ...errs },
        },
      },
      async (req, reply) =>
        ask(req, reply, {
          kind: 'escrow.expire',
          fingerprint: (req.params as { fingerprint: string }).fingerprint,
          expiresAt: Date.parse((req.body as { expiresAt: string }).expiresAt),
        }),
    );

    // the latest restore drills with their recovery time (RTO), newest first
    app.get(
      '/backup/drills',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'latest restore drills and their RTO, newest first',
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ drills: Type.Array(DrillSchema) }), ...errs },
        },
      },
      async (req) => {
        const limit = (req.query as { limit?: number }).limit ?? 10;
        const rows = await service.d.db.db
          .selectFrom('backup_checks')
          .leftJoin('backups', 'backups.id', 'backup_checks.backup_id')
          .select([
            'backup_checks.backup_id',
            'backups.target',
            'backup_checks.started_at',
            'backup_checks.ended_at',
            'backup_checks.ok',
            'backup_checks.error',
            'backup_checks.details',
          ])
          .where('backup_checks.kind', 'in', ['drill', 'drill-secondary'])
          .select('backup_checks.kind')
          .orderBy('backup_checks.id', 'desc')
          .limit(limit)
          .execute();
        return {
          drills: rows.map((r) => {
            const d = (r.details ? JSON.parse(r.details) : {}) as Record<string, unknown>;
            const n = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : null);
            const secondary = r.kind === 'drill-secondary';
            return {
              backupId: r.backup_id,
              target: r.target ?? (secondary && typeof d.target === 'string' ? d.target : null),
              startedAt: isoOrNull(Number(r.started_at))!,
              endedAt: isoOrNull(Number(r.ended_at))!,
              ok: Number(r.ok) === 1,
              rtoMs: n('rtoMs'),
              documents: n('documents'),
              versions: n('versions'),
              blobs: n('blobs'),
              samples: n('samples'),
              plainSize: n('plainSize'),
              error: r.error,
              where: secondary ? 'secondary' : 'local',
              site: secondary && typeof d.site === 'string' ? d.site : null,
            };
          }),
        };
      },
    );

    // the latest drill here and the latest on the secondary site (its signed report, checked by this HSM)
    app.get(
      '/backup/drills/last',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'the latest local restore drill and the latest on the secondary site: when, RTO, outcome',
          response: { 200: Type.Object({ local: LastDrill, secondary: LastDrill }), ...errs },
        },
      },
      async () => {
        const l = await service.lastDrills();
        const out = (x: (typeof l)['local']) =>
          x
            ? {
                backupId: x.backupId,
                startedAt: isoOrNull(x.startedAt)!,
                endedAt: isoOrNull(x.endedAt)!,
                ok: x.ok,
                rtoMs: x.rtoMs,
                error: x.error,
                site: x.site,
              }
            : null;
        return { local: out(l.local), secondary: out(l.secondary) };
      },
    );

    app.post(
      '/backup/run',
      {
        config: { permission: PERMISSIONS.backupRun },
        schema: {
          tags,
          summary: 'take a backup now (202; follow it in /backup/runs)',
          response: { 202: Started, ...errs },
        },
      },
      async (req, reply) => {
        reply.code(202);
        return start(BACKUP_JOB, actorOf(req));
      },
    );

    app.post(
      '/backup/backups/:id/verify',
      {
        config: { permission: PERMISSIONS.backupRun },
        schema: {
          tags,
          summary: 'download, decrypt and check a backup (202; the result is in /backup/backups)',
          params: Type.Object({ id: Type.String({ pattern: '^(latest|\\d{8}T\\d{6}Z-[0-9a-f]{6})$' }) }),
          response: { 202: Started, ...errs },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        await service.find(id);
        reply.code(202);
        return start(VERIFY_JOB, actorOf(req), { id });
      },
    );

    app.post(
      '/backup/drill',
      {
        config: { permission: PERMISSIONS.backupRun },
        schema: {
          tags,
          summary: 'run the restore drill now on the newest backup (202; follow it at /backup/runs/{id})',
          response: { 202: Started, ...errs },
        },
      },
      async (req, reply) => {
        reply.code(202);
        return start(DRILL_JOB, actorOf(req));
      },
    );

    app.get(
      '/backup/runs/:id',
      {
        config: { permission: PERMISSIONS.backupRead },
        schema: {
          tags,
          summary: 'one run of a backup job: progress, outcome, and what it returned or why it failed',
          params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
          response: { 200: RunDetailSchema, ...errs },
        },
      },
      async (req) => {
        const r = await scheduler.runById((req.params as { id: number }).id);
        if (!r || !BACKUP_JOBS.includes(r.job)) throw errors.notFound('run');
        return {
          id: r.id,
          job: r.job,
          trigger: r.trigger,
          actor: r.actor,
          startedAt: isoOrNull(r.startedAt)!,
          endedAt: isoOrNull(r.endedAt),
          outcome: r.outcome,
          progress: r.progress,
          error: r.error,
          result: r.result,
          errorCode: r.errorCode,
          errorDetails: r.errorDetails,
        };
      },
    );

    app.post(
      '/backup/targets',
      {
        config: { permission: PERMISSIONS.backupManage },
        schema: {
          tags,
          summary:
            'ask to register a target (refused at once when its site breaks the policy; else 202: a request an admin approves)',
          body: AddTargetBody,
          response: { 202: Pending, ...errs },
        },
      },
      async (req, reply) =>
        ask(req, reply, { kind: 'target.add', target: { ...(req.body as Static<typeof AddTargetBody>) } }),
    );

    app.delete(
      '/backup/targets/:name',
      {
        config: { permission: PERMISSIONS.backupManage },
        schema: {
          tags,
          summary: 'ask to destroy every backup at a target and unregister it (202: a request an admin approves)',
          params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }) }),
          response: { 202: Pending, ...errs },
        },
      },
      async (req, reply) => ask(req, reply, { kind: 'target.remove', name: (req.params as { name: string }).name }),
    );
  };
}
