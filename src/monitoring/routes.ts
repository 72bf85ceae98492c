import { ErrorReply, errorReplies, JobRunSchema, Nullable } from '../http/index.js';
import { isoOrNull } from '../shared/time.js';
import crypto, { type X509Certificate } from 'node:crypto';
import { clientCertAllowed } from './mtls.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Registry } from 'prom-client';
import { PERMISSIONS } from '../access/index.js';
import { auditSource } from '../audit/index.js';
import { runHealthChecks, type HealthCheck } from '../http/index.js';
import type { Scheduler } from '../jobs/index.js';
import { AppError, errors } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import type { DbAlerter } from './alerter.js';
import { COARSE, MINUTE, type MetricStore } from './metric-store.js';
import type { Sampler } from './sampler.js';
import type { Kysely } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';

const tags = ['monitoring'];
const errs = errorReplies(400, 401, 403, 404, 409);

const RANGES = {
  '1h': { ms: 3_600_000, coarse: false },
  '24h': { ms: 86_400_000, coarse: false },
  '30d': { ms: 30 * 86_400_000, coarse: true },
} as const;

const AlertSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    severity: Type.String(),
    message: Type.String(),
    targets: Type.Record(Type.String(), Type.String()),
    state: Type.String(),
    raisedAt: Type.String(),
    lastAt: Type.String(),
    repeats: Type.Integer(),
    acknowledgedAt: Nullable(Type.String()),
    acknowledgedBy: Nullable(Type.String()),
    resolvedAt: Nullable(Type.String()),
    resolvedBy: Nullable(Type.String()),
    deliveries: Type.Record(Type.String(), Type.String()),
  },
  { additionalProperties: false },
);

export interface MonitoringRoutesOptions {
  db: Kysely<MonitoringSchema>;
  clock: Clock;
  alerter: DbAlerter;
  store: MetricStore;
  sampler: Sampler;
  scheduler: Scheduler;
  health: () => readonly HealthCheck[];
}

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}

/**
 * The operations API behind the console's Operations section: component health with details,
 * metric series, alerts (acknowledge, resolve), job runs, the newest backup per target.
 * `monitoring:read` (admins, backup operators, auditors), `monitoring:manage` to act on alerts
 * (admins, backup operators).
 */
export function monitoringRoutes(o: MonitoringRoutesOptions): FastifyPluginAsync {
  return async (app0) => {
    const app = app0.withTypeProvider<TypeBoxTypeProvider>();
    const read = { permission: PERMISSIONS.monitoringRead };

    app.get(
      '/monitoring/health',
      {
        config: read,
        schema: {
          tags,
          summary: 'each component with why it is down',
          response: {
            200: Type.Object({
              components: Type.Array(
                Type.Object(
                  { name: Type.String(), ok: Type.Boolean(), detail: Type.Optional(Type.String()), ms: Type.Integer() },
                  { additionalProperties: false },
                ),
              ),
            }),
            ...errs,
          },
        },
      },
      async () => ({ components: await runHealthChecks(o.health()) }),
    );

    app.get(
      '/monitoring/metrics',
      {
        config: read,
        schema: {
          tags,
          summary: 'metric series over 1 h, 24 h (1-minute points) or 30 d (15-minute points)',
          querystring: Type.Object(
            {
              range: Type.Union([Type.Literal('1h'), Type.Literal('24h'), Type.Literal('30d')], { default: '1h' }),
              names: Type.String({ pattern: '^[a-z0-9_]{1,64}(,[a-z0-9_]{1,64}){0,31}$' }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              range: Type.String(),
              resolutionMs: Type.Integer(),
              series: Type.Array(
                Type.Object(
                  {
                    name: Type.String(),
                    labels: Type.Record(Type.String(), Type.String()),
                    points: Type.Array(Type.Tuple([Type.Number(), Type.Number(), Type.Number()])),
                  },
                  { additionalProperties: false },
                ),
              ),
            }),
            ...errs,
          },
        },
      },
      async (req) => {
        const r = RANGES[req.query.range];
        return {
          range: req.query.range,
          resolutionMs: r.coarse ? COARSE : MINUTE,
          series: await o.store.query(req.query.names.split(','), o.clock.nowMs() - r.ms, r.coarse),
        };
      },
    );

    app.get(
      '/monitoring/now',
      {
        config: read,
        schema: {
          tags,
          summary: 'the latest sample of every metric',
          response: {
            200: Type.Object({
              samples: Type.Array(
                Type.Object(
                  { name: Type.String(), labels: Type.Record(Type.String(), Type.String()), value: Type.Number() },
                  { additionalProperties: false },
                ),
              ),
            }),
            ...errs,
          },
        },
      },
      async () => ({
        samples: o.sampler.latest().map((s) => ({ name: s.name, labels: s.labels ?? {}, value: s.value })),
      }),
    );

    app.get(
      '/monitoring/alerts',
      {
        config: read,
        schema: {
          tags,
          summary: 'alerts, newest first: active (open or acknowledged), or by state, or all',
          querystring: Type.Object(
            {
              state: Type.Optional(
                Type.Union([
                  Type.Literal('active'),
                  Type.Literal('open'),
                  Type.Literal('acknowledged'),
                  Type.Literal('resolved'),
                ]),
              ),
              limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ alerts: Type.Array(AlertSchema) }), ...errs },
        },
      },
      async (req) => ({
        alerts: (
          await o.alerter.list({ ...(req.query.state ? { state: req.query.state } : {}), limit: req.query.limit })
        ).map((a) => ({
          ...a,
          raisedAt: isoOrNull(a.raisedAt)!,
          lastAt: isoOrNull(a.lastAt)!,
          acknowledgedAt: isoOrNull(a.acknowledgedAt),
          resolvedAt: isoOrNull(a.resolvedAt),
        })),
      }),
    );

    for (const [verb, to] of [
      ['ack', 'acknowledge'],
      ['resolve', 'resolve'],
    ] as const) {
      app.post(
        `/monitoring/alerts/:id/${verb}`,
        {
          config: { permission: PERMISSIONS.monitoringManage },
          schema: {
            tags,
            summary: `${to} an alert`,
            params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }),
            response: { 200: Type.Object({ id: Type.String(), state: Type.String() }), ...errs },
          },
        },
        async (req) => {
          const exists = await o.db
            .selectFrom('alerts')
            .select('state')
            .where('id', '=', req.params.id)
            .executeTakeFirst();
          if (!exists) throw errors.notFound('alert');
          const ok = await o.alerter[to](req.params.id, actorOf(req), auditSource(req));
          if (!ok)
            throw new AppError(
              'ALERT_NOT_OPEN',
              to === 'acknowledge' ? 'only an open alert can be acknowledged' : 'this alert is already resolved',
              { httpStatus: 409 },
            );
          return { id: req.params.id, state: to === 'acknowledge' ? 'acknowledged' : 'resolved' };
        },
      );
    }

    app.get(
      '/monitoring/jobs',
      {
        config: read,
        schema: {
          tags,
          summary: 'every job with its schedule, and the latest runs (progress, outcome, error)',
          querystring: Type.Object(
            {
              job: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9.-]{0,63}$' })),
              limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              jobs: Type.Array(
                Type.Object(
                  { name: Type.String(), schedule: Nullable(Type.String()) },
                  { additionalProperties: false },
                ),
              ),
              runs: Type.Array(JobRunSchema),
            }),
            ...errs,
          },
        },
      },
      async (req) => ({
        jobs: o.scheduler.list().map((j) => ({ name: j.name, schedule: j.schedule ?? null })),
        runs: (await o.scheduler.runs(req.query.job, req.query.limit)).map((r) => ({
          id: r.id,
          job: r.job,
          trigger: r.trigger,
          actor: r.actor,
          startedAt: isoOrNull(r.startedAt)!,
          endedAt: isoOrNull(r.endedAt),
          durationMs: r.endedAt === null ? null : r.endedAt - r.startedAt,
          outcome: r.outcome,
          progress: r.progress,
          error: r.error,
        })),
      }),
    );

    app.get(
      '/monitoring/backups',
      {
        config: read,
        schema: {
          tags,
          summary: 'per backup target: the newest complete backup and the latest attempt (read-only)',
          response: {
            200: Type.Object({
              targets: Type.Array(
                Type.Object(
                  {
                    target: Type.String(),
                    newestCompleteAt: Nullable(Type.String()),
                    verifiedAt: Nullable(Type.String()),
                    lastAttemptAt: Nullable(Type.String()),
                    lastState: Nullable(Type.String()),
                  },
                  { additionalProperties: false },
                ),
              ),
            }),
            ...errs,
          },
        },
      },
      async () => {
        const targets = await o.db.selectFrom('backup_targets').select('name').orderBy('name').execute();
        const out = [];
        for (const t of targets) {
          const complete = await o.db
            .selectFrom('backups')
            .select(['created_at', 'verified_at'])
            .where('target', '=', t.name)
            .where('state', '=', 'complete')
            .orderBy('created_at', 'desc')
            .executeTakeFirst();
          const last = await o.db
            .selectFrom('backups')
            .select(['created_at', 'state'])
            .where('target', '=', t.name)
            .orderBy('created_at', 'desc')
            .executeTakeFirst();
          out.push({
            target: t.name,
            newestCompleteAt: isoOrNull(complete ? Number(complete.created_at) : null),
            verifiedAt: isoOrNull(complete?.verified_at == null ? null : Number(complete.verified_at)),
            lastAttemptAt: isoOrNull(last ? Number(last.created_at) : null),
            lastState: last?.state ?? null,
          });
        }
        return { targets: out };
      },
    );
  };
}

/**
 * `GET /metrics`: the Prometheus text format, for a scraper that sends `Authorization: Bearer
 * <monitoring.scrapeTokenFile>` or presents a client certificate issued by
 * `monitoring.scrapeClientCaFile` (./mtls.ts). 404 when neither is configured, 401 otherwise (the
 * token compared in constant time). Public as far as the session gate goes: these are its own
 * credentials.
 */
export function metricsEndpoint(o: {
  registry: Registry;
  token: string | undefined;
  clientCas?: readonly X509Certificate[];
}): FastifyPluginAsync {
  const want = o.token === undefined ? undefined : crypto.createHash('sha256').update(o.token).digest();
  const cas = o.clientCas ?? [];
  return async (app) => {
    app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
      if (!want && !cas.length) throw errors.notFound('route');
      const byCert = cas.length > 0 && clientCertAllowed(req.raw.socket, cas);
      if (!byCert) {
        const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.authorization ?? '');
        const got = crypto
          .createHash('sha256')
          .update(m?.[1] ?? '')
          .digest();
        if (!want || !m || !crypto.timingSafeEqual(got, want)) {
          if (want) reply.header('www-authenticate', 'Bearer realm="coffre-metrics"');
          throw errors.unauthenticated();
        }
      }
      reply.header('content-type', o.registry.contentType).header('cache-control', 'no-store');
      return o.registry.metrics();
    });
  };
}
