import { ErrorReply, errorReplies } from '../http/index.js';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { errors, AppError } from '../shared/errors.js';
import { auditSource } from './source.js';
import type { AuditService } from './service.js';
import { parseExportedCheckpoint, type Checkpoint } from './checkpoint-format.js';

const tags = ['audit'];
const errs = errorReplies(400, 401, 403, 503);
const IdLike = (max = 128) => Type.String({ minLength: 1, maxLength: max, pattern: '^[\\x21-\\x7e]+$' });

export const EventsQuery = Type.Object(
  {
    actor: Type.Optional(
      Type.String({ pattern: '^(?:(?:user|token|local|job):[\\x21-\\x7e]{1,128}|anonymous|system)$' }),
    ),
    action: Type.Optional(
      Type.String({
        maxLength: 64,
        pattern: '^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)*(\\.\\*)?$',
        description: 'exact action, or a prefix such as auth.*',
      }),
    ),
    target: Type.Optional(IdLike()),
    targetKind: Type.Optional(Type.String({ pattern: '^[a-z][a-zA-Z0-9_]{0,31}$' })),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')])),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

export const EventSchema = Type.Object(
  {
    type: Type.Literal('coffre.audit.event'),
    seq: Type.Integer(),
    at: Type.String(),
    actor: Type.String(),
    action: Type.String(),
    outcome: Type.String(),
    reason: Type.Union([Type.String(), Type.Null()]),
    targets: Type.Record(Type.String(), Type.String()),
    source: Type.Object({
      ip: Type.Union([Type.String(), Type.Null()]),
      userAgent: Type.Union([Type.String(), Type.Null()]),
      requestId: Type.Union([Type.String(), Type.Null()]),
    }),
    hash: Type.String(),
  },
  { additionalProperties: false },
);
const EventsReply = Type.Object(
  { events: Type.Array(EventSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

const ExportQuery = Type.Object(
  { from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);

const VerifyBody = Type.Union([
  Type.Null(),
  Type.Object(
    {
      checkpoints: Type.Array(Type.Record(Type.String(), Type.Unknown()), {
        maxItems: 1000,
        description: 'exported checkpoints (SIEM, backups) to check against',
      }),
    },
    { additionalProperties: false },
  ),
]);
const VerifyReply = Type.Object(
  {
    ok: Type.Boolean(),
    records: Type.Integer(),
    firstSeq: Type.Union([Type.Integer(), Type.Null()]),
    lastSeq: Type.Union([Type.Integer(), Type.Null()]),
    prunedUpTo: Type.Integer(),
    checkpoints: Type.Object({ total: Type.Integer(), matched: Type.Integer(), macChecked: Type.Boolean() }),
    anchors: Type.Object({ total: Type.Integer(), matched: Type.Integer() }),
    firstBadSeq: Type.Optional(Type.Integer()),
    problem: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { additionalProperties: false },
);

const time = (s: string | undefined, name: string): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw new AppError('VALIDATION', `${name} is not a date-time`, { httpStatus: 400 });
  return t;
};

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}

/**
 * The auditor's API (role `auditor`): query (`audit:read`), JSON-lines export (`audit:read`),
 * verification (`audit:verify`). Each use is itself audited before any data is released.
 */
export function auditRoutes(audit: AuditService): FastifyPluginAsync {
  return async (app0) => {
    const app = app0.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/audit/events',
      {
        config: { permission: PERMISSIONS.auditRead },
        schema: {
          tags,
          summary: 'audit events, newest first, filtered and paginated',
          querystring: EventsQuery,
          response: { 200: EventsReply, ...errs },
        },
      },
      async (req) => {
        const q = req.query as Static<typeof EventsQuery>;
        const f = {
          ...(q.actor !== undefined ? { actor: q.actor } : {}),
          ...(q.action !== undefined ? { action: q.action } : {}),
          ...(q.target !== undefined ? { target: q.target } : {}),
          ...(q.targetKind !== undefined ? { targetKind: q.targetKind } : {}),
          ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
          ...(q.from !== undefined ? { from: time(q.from, 'from') } : {}),
          ...(q.to !== undefined ? { to: time(q.to, 'to') } : {}),
        };
        await audit.recordNow({
          action: 'audit.query',
          actor: actorOf(req),
          outcome: 'success',
          source: auditSource(req),
        });
        return audit.query(f, { limit: q.limit, cursor: q.cursor });
      },
    );

    app.get(
      '/audit/export',
      {
        config: { permission: PERMISSIONS.auditRead },
        schema: {
          tags,
          summary: 'JSON-lines export of the records in [from, to) (application/x-ndjson)',
          querystring: ExportQuery,
          response: { ...errs },
        },
      },
      async (req, reply) => {
        const q = req.query as Static<typeof ExportQuery>;
        const range = { from: time(q.from, 'from')!, to: time(q.to, 'to')! };
        if (range.to <= range.from) throw new AppError('VALIDATION', 'to must be after from', { httpStatus: 400 });
        await audit.recordNow({
          action: 'audit.export',
          actor: actorOf(req),
          outcome: 'success',
          source: auditSource(req),
        });
        const out = new PassThrough();
        void audit
          .export(range, async (line) => {
            if (!out.write(line + '\n')) await once(out, 'drain');
          })
          .then(
            () => out.end(),
            (e: unknown) => {
              req.log.error({ err: e }, 'audit export failed midway');
              out.destroy(e as Error);
            },
          );
        return reply
          .header('content-type', 'application/x-ndjson; charset=utf-8')
          .header('content-disposition', 'attachment; filename="coffre-audit.jsonl"')
          .send(out as never);
      },
    );

    app.post(
      '/audit/verify',
      {
        config: { permission: PERMISSIONS.auditVerify },
        schema: {
          tags,
          summary: 'recompute the chain and check every checkpoint in the HSM',
          body: VerifyBody,
          response: { 200: VerifyReply, ...errs },
        },
      },
      async (req) => {
        const body = req.body as Static<typeof VerifyBody>;
        const anchors: Checkpoint[] = [];
        for (const o of body?.checkpoints ?? []) {
          const c = parseExportedCheckpoint(o);
          if (!c) throw new AppError('VALIDATION', 'checkpoints: not a Coffre audit checkpoint', { httpStatus: 400 });
          anchors.push(c);
        }
        const report = await audit.verify(anchors);
        await audit.recordNow({
          action: 'audit.verify',
          actor: actorOf(req),
          outcome: report.ok ? 'success' : 'failure',
          ...(report.ok ? {} : { reason: report.problem!.code }),
          source: auditSource(req),
        });
        return report;
      },
    );
  };
}
