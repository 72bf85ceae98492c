import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import type { JobRunDetail, JobRunRecord, Scheduler } from '../jobs/index.js';
import { AppError, errors } from '../shared/errors.js';
import * as S from './schemas.js';

/** the job that checks the whole store (./jobs.ts); the console's "verify now" starts it */
export const SCRUB_JOB = 'vault.scrub';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Run = Type.Object(
  {
    id: Type.Integer(),
    trigger: Type.String(),
    actor: Type.String(),
    startedAt: Type.String(),
    endedAt: Nullable(Type.String()),
    outcome: Type.String(),
    progress: Type.Union([
      Type.Object({
        phase: Type.String(),
        done: Type.Optional(Type.Number()),
        total: Type.Optional(Type.Number()),
        percent: Type.Optional(Type.Number()),
        unit: Type.Optional(Type.String()),
      }),
      Type.Null(),
    ]),
    error: Nullable(Type.String()),
    /** the signed integrity report, once the run has ended; null before, or when it failed */
    report: Type.Union([S.VerifyReply, Type.Null()]),
  },
  { additionalProperties: false },
);
const errs = { 401: S.ErrorReply, 403: S.ErrorReply, 404: S.ErrorReply, 409: S.ErrorReply };
const tags = ['vault'];

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const isReport = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'coffre.integrity-report';
const runView = (r: JobRunRecord, result: unknown) => ({
  id: r.id,
  trigger: r.trigger,
  actor: r.actor,
  startedAt: iso(r.startedAt)!,
  endedAt: iso(r.endedAt),
  outcome: r.outcome,
  progress: r.progress,
  error: r.error,
  report: isReport(result) ? result : null,
});

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}

/**
 * Integrity control of the whole store on demand (`coffre vault verify --all` from the console),
 * for the auditor (`audit:verify`, like the audit trail's own verification): starts the weekly
 * `vault.scrub` job now (single-flight: 409 JOB_BUSY while one runs) and lists its runs with the
 * signed report each produced. Reports name ids only (documents, versions, blobs), never content;
 * each run is audited as `vault.verify` and raises an alert per failed version (./verify.ts).
 */
export function vaultVerifyRoutes(scheduler: Scheduler): FastifyPluginAsync {
  return async (app) => {
    app.post(
      '/vault/verify',
      {
        config: { permission: PERMISSIONS.auditVerify },
        schema: {
          tags,
          summary:
            "integrity control of the whole store now (job vault.scrub): every chunk's tag, size and SHA-256; follow the run",
          response: { 202: Type.Object({ runId: Type.Integer() }, { additionalProperties: false }), ...errs },
        },
      },
      async (req, reply) => {
        const actor = actorOf(req);
        const runId = await new Promise<number>((resolve, reject) => {
          let started = false;
          scheduler
            .run(SCRUB_JOB, { trigger: 'api', actor, onStarted: (id) => ((started = true), resolve(id)) })
            .catch((e: unknown) => {
              if (!started) reject(e);
              else req.log.warn({ err: e }, 'vault.scrub started from the console failed');
            });
        });
        return reply.code(202).send({ runId });
      },
    );

    app.get(
      '/vault/verify/runs',
      {
        config: { permission: PERMISSIONS.auditVerify },
        schema: {
          tags,
          summary: 'the latest integrity controls of the whole store (scheduled or on demand), newest first',
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ runs: Type.Array(Run) }, { additionalProperties: false }), ...errs },
        },
      },
      async (req) => {
        const limit = (req.query as { limit?: number }).limit ?? 10;
        const runs = await scheduler.runs(SCRUB_JOB, limit);
        const details = await Promise.all(runs.map((r) => scheduler.runById(r.id)));
        return { runs: runs.map((r, i) => runView(r, (details[i] as JobRunDetail | null)?.result ?? null)) };
      },
    );

    app.get(
      '/vault/verify/runs/:runId',
      {
        config: { permission: PERMISSIONS.auditVerify },
        schema: {
          tags,
          summary: 'one integrity control: progress while it runs, then its signed report',
          params: Type.Object({ runId: Type.Integer({ minimum: 1 }) }),
          response: { 200: Run, ...errs },
        },
      },
      async (req) => {
        const r = await scheduler.runById((req.params as { runId: number }).runId);
        if (!r || r.job !== SCRUB_JOB)
          throw new AppError('NOT_FOUND', 'integrity control run not found', { httpStatus: 404 });
        return runView(r, r.result);
      },
    );
  };
}
