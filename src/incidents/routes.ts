import { ErrorReply, errorReplies, Nullable as N } from '../http/index.js';
import { isoOrNull } from '../shared/time.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { auditSource } from '../audit/index.js';
import type { Alerter } from '../monitoring/types.js';
import { errors } from '../shared/errors.js';
import type { IncidentService } from './service.js';
import { incidentReport, reportCsv } from './report.js';
import {
  ACTION_KINDS,
  SEVERITIES,
  STATUSES,
  type ActionKind,
  type Incident,
  type IncidentSeverity,
  type IncidentStatus,
} from './types.js';

const tags = ['incidents'];
const errs = errorReplies(400, 401, 403, 404, 409);
const lit = <T extends readonly string[]>(xs: T) => Type.Union(xs.map((x) => Type.Literal(x)));
const Uuid = Type.String({ pattern: '^[0-9a-f-]{36}$' });
const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const Time = Type.String({ format: 'date-time' });
const Ids = Type.Array(Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' }), { maxItems: 10_000 });

const Breach = Type.Object(
  {
    nature: Type.Optional(Type.String({ maxLength: 5000 })),
    subjectCategories: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50 })),
    subjectsApprox: Type.Optional(Type.Integer({ minimum: 0 })),
    recordCategories: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50 })),
    recordsApprox: Type.Optional(Type.Integer({ minimum: 0 })),
    consequences: Type.Optional(Type.String({ maxLength: 5000 })),
    measures: Type.Optional(Type.String({ maxLength: 5000 })),
    contact: Type.Optional(Type.String({ maxLength: 5000 })),
    delayReason: Type.Optional(Type.String({ maxLength: 5000 })),
  },
  { additionalProperties: false },
);
const Dora = Type.Object(
  {
    classification: Type.Optional(lit(['major', 'significant', 'other'] as const)),
    clientsAffected: Type.Optional(Type.Integer({ minimum: 0 })),
    clientsAffectedPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    counterpartsAffected: Type.Optional(Type.Integer({ minimum: 0 })),
    durationMinutes: Type.Optional(Type.Integer({ minimum: 0 })),
    serviceDowntimeMinutes: Type.Optional(Type.Integer({ minimum: 0 })),
    memberStates: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]{2}$' }), { maxItems: 40 })),
    dataLosses: Type.Optional(
      Type.Array(lit(['availability', 'authenticity', 'integrity', 'confidentiality'] as const), { maxItems: 4 }),
    ),
    criticalServicesAffected: Type.Optional(Type.Boolean()),
    economicImpactEur: Type.Optional(Type.Number({ minimum: 0 })),
    reputationalImpact: Type.Optional(Type.Boolean()),
    rootCauseType: Type.Optional(Type.String({ maxLength: 200 })),
    recurring: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const ClockSchema = Type.Object(
  {
    detectedAt: Type.String(),
    deadline: Type.String(),
    remainingMs: Type.Integer(),
    notifiedAt: N(Type.String()),
    state: Type.String(),
  },
  { additionalProperties: false },
);
const ActionSchema = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    description: Type.String(),
    owner: N(Type.String()),
    dueAt: N(Type.String()),
    state: Type.String(),
    createdAt: Type.String(),
    createdBy: Type.String(),
    closedAt: N(Type.String()),
    closedBy: N(Type.String()),
    outcome: N(Type.String()),
  },
  { additionalProperties: false },
);
const UpdateSchema = Type.Object(
  {
    id: Type.Integer(),
    at: Type.String(),
    actor: Type.String(),
    status: Type.String(),
    message: Type.String(),
    public: Type.Boolean(),
    publicMessage: N(
      Type.Object(
        { en: Type.Optional(Type.String()), fr: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const Summary = {
  id: Type.String(),
  title: Type.String(),
  severity: Type.String(),
  status: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  detectedAt: Type.String(),
  updatedAt: Type.String(),
  resolvedAt: N(Type.String()),
  personalData: Type.Boolean(),
  authorityNotifiedAt: N(Type.String()),
  publicTitle: N(Type.String()),
  alertId: N(Type.String()),
  breachClock: N(ClockSchema),
};
const SummarySchema = Type.Object(Summary, { additionalProperties: false });
const IncidentSchema = Type.Object(
  {
    ...Summary,
    rootCause: N(Type.String()),
    breach: N(Breach),
    dora: N(Dora),
    affected: Type.Object(
      {
        components: Type.Array(Type.String()),
        workspaces: Type.Array(Type.String()),
        users: Type.Array(Type.String()),
      },
      { additionalProperties: false },
    ),
    actions: Type.Array(ActionSchema),
    updates: Type.Array(UpdateSchema),
  },
  { additionalProperties: false },
);

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}
const ms = (s: string | undefined) => (s === undefined ? undefined : Date.parse(s));

export interface IncidentRoutesOptions {
  service: IncidentService;
  alerts: Alerter;
  applianceId: string;
  organisation: string;
}

/**
 * The incident register's API (docs/incidents.md): `incidents:read` (admins, auditors),
 * `incidents:manage` (admins), and `POST /incidents/report` for any signed-in user (a draft for the
 * admins, and an alert).
 */
export function incidentRoutes(o: IncidentRoutesOptions): FastifyPluginAsync {
  const s = o.service;
  const summary = (i: Omit<Incident, 'actions' | 'updates' | 'affected' | 'breach' | 'dora'>) => {
    const c = s.breachClock(i);
    return {
      id: i.id,
      title: i.title,
      severity: i.severity,
      status: i.status,
      createdAt: isoOrNull(i.createdAt)!,
      createdBy: i.createdBy,
      detectedAt: isoOrNull(i.detectedAt)!,
      updatedAt: isoOrNull(i.updatedAt)!,
      resolvedAt: isoOrNull(i.resolvedAt),
      personalData: i.personalData,
      authorityNotifiedAt: isoOrNull(i.authorityNotifiedAt),
      publicTitle: i.publicTitle,
      alertId: i.alertId,
      breachClock: c
        ? {
            detectedAt: isoOrNull(c.detectedAt)!,
            deadline: isoOrNull(c.deadline)!,
            remainingMs: c.remainingMs,
            notifiedAt: isoOrNull(c.notifiedAt),
            state: c.state,
          }
        : null,
    };
  };
  const full = (i: Incident) => ({
    ...summary(i),
    rootCause: i.rootCause,
    breach: i.breach,
    dora: i.dora,
    affected: i.affected,
    actions: i.actions.map((a) => ({
      ...a,
      dueAt: isoOrNull(a.dueAt),
      createdAt: isoOrNull(a.createdAt)!,
      closedAt: isoOrNull(a.closedAt),
    })),
    updates: i.updates.map((u) => ({ ...u, at: isoOrNull(u.at)! })),
  });
  return async (app0) => {
    const app = app0.withTypeProvider<TypeBoxTypeProvider>();
    const read = { permission: PERMISSIONS.incidentsRead };
    const manage = { permission: PERMISSIONS.incidentsManage };

    app.get(
      '/incidents',
      {
        config: read,
        schema: {
          tags,
          summary: 'the register, newest first',
          querystring: Type.Object(
            {
              status: Type.Optional(lit([...STATUSES, 'open'] as const)),
              limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ incidents: Type.Array(SummarySchema) }), ...errs },
        },
      },
      async (req) => ({
        incidents: (
          await s.list({
            ...(req.query.status ? { status: req.query.status as IncidentStatus | 'open' } : {}),
            limit: req.query.limit,
          })
        ).map(summary),
      }),
    );

    app.post(
      '/incidents',
      {
        config: manage,
        schema: {
          tags,
          summary: 'open an incident (status investigating)',
          body: Type.Object(
            {
              title: Type.String({ minLength: 1, maxLength: 200 }),
              severity: lit(SEVERITIES),
              detectedAt: Type.Optional(Time),
              personalData: Type.Optional(Type.Boolean()),
              message: Type.Optional(Type.String({ maxLength: 5000 })),
              components: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: IncidentSchema, ...errs },
        },
      },
      async (req, reply) => {
        const b = req.body;
        const i = await s.create(
          {
            title: b.title,
            severity: b.severity as IncidentSeverity,
            ...(b.detectedAt ? { detectedAt: ms(b.detectedAt)! } : {}),
            ...(b.personalData !== undefined ? { personalData: b.personalData } : {}),
            ...(b.message !== undefined ? { message: b.message } : {}),
            ...(b.components ? { components: b.components } : {}),
          },
          actorOf(req),
          auditSource(req),
        );
        return reply.code(201).send(full(i));
      },
    );

    app.post(
      '/incidents/report',
      {
        config: { permission: PERMISSIONS.self },
        schema: {
          tags,
          summary: 'report a suspected incident (any signed-in user): a draft for the admins, and an alert',
          body: Type.Object(
            {
              title: Type.String({ minLength: 1, maxLength: 200 }),
              description: Type.String({ minLength: 1, maxLength: 5000 }),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({ id: Type.String(), status: Type.String() }, { additionalProperties: false }),
            ...errs,
          },
        },
      },
      async (req, reply) => {
        const actor = actorOf(req);
        const i = await s.create(
          { title: req.body.title, severity: 'medium', message: req.body.description, draft: true },
          actor,
          auditSource(req),
        );
        await o.alerts.raise({
          kind: 'incident.reported',
          severity: 'warning',
          message: 'a user reported a suspected incident: a draft waits in the incident register',
          targets: { incident: i.id, actor },
        });
        return reply.code(201).send({ id: i.id, status: i.status });
      },
    );

    app.get(
      '/incidents/:id',
      {
        config: read,
        schema: {
          tags,
          summary: 'one incident with its timeline, actions, what it affects and its breach clock',
          params: IdParams,
          response: { 200: IncidentSchema, ...errs },
        },
      },
      async (req) => full(await s.get(req.params.id)),
    );

    app.patch(
      '/incidents/:id',
      {
        config: manage,
        schema: {
          tags,
          summary:
            'edit the incident: title, severity, detection time, personal data, root cause, breach details, DORA fields, public title, when the authority was notified',
          params: IdParams,
          body: Type.Object(
            {
              title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              severity: Type.Optional(lit(SEVERITIES)),
              detectedAt: Type.Optional(Time),
              personalData: Type.Optional(Type.Boolean()),
              rootCause: Type.Optional(N(Type.String({ maxLength: 10_000 }))),
              breach: Type.Optional(N(Breach)),
              dora: Type.Optional(N(Dora)),
              publicTitle: Type.Optional(N(Type.String({ maxLength: 200 }))),
              authorityNotifiedAt: Type.Optional(N(Time)),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: IncidentSchema, ...errs },
        },
      },
      async (req) => {
        const b = req.body;
        const { detectedAt, authorityNotifiedAt, ...rest } = b;
        return full(
          await s.edit(
            req.params.id,
            {
              ...rest,
              ...(detectedAt !== undefined ? { detectedAt: ms(detectedAt)! } : {}),
              ...(authorityNotifiedAt !== undefined
                ? { authorityNotifiedAt: authorityNotifiedAt === null ? null : ms(authorityNotifiedAt)! }
                : {}),
            } as Parameters<IncidentService['edit']>[1],
            actorOf(req),
            auditSource(req),
          ),
        );
      },
    );

    app.post(
      '/incidents/:id/updates',
      {
        config: manage,
        schema: {
          tags,
          summary:
            'a timeline update, possibly changing the status (resolved: every action must be closed, else 409 INCIDENT_ACTIONS_OPEN); with publicMessage it is public',
          params: IdParams,
          body: Type.Object(
            {
              status: lit(STATUSES),
              message: Type.String({ minLength: 1, maxLength: 5000 }),
              publicMessage: Type.Optional(
                Type.Object(
                  {
                    en: Type.Optional(Type.String({ maxLength: 2000 })),
                    fr: Type.Optional(Type.String({ maxLength: 2000 })),
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 201: IncidentSchema, ...errs },
        },
      },
      async (req, reply) => {
        const { incident } = await s.addUpdate(
          req.params.id,
          {
            status: req.body.status as IncidentStatus,
            message: req.body.message,
            ...(req.body.publicMessage ? { publicMessage: req.body.publicMessage } : {}),
          },
          actorOf(req),
          auditSource(req),
        );
        return reply.code(201).send(full(incident));
      },
    );

    app.post(
      '/incidents/:id/actions',
      {
        config: manage,
        schema: {
          tags,
          summary: 'add a corrective or preventive action',
          params: IdParams,
          body: Type.Object(
            {
              kind: lit(ACTION_KINDS),
              description: Type.String({ minLength: 1, maxLength: 2000 }),
              owner: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' })),
              dueAt: Type.Optional(Time),
            },
            { additionalProperties: false },
          ),
          response: { 201: ActionSchema, ...errs },
        },
      },
      async (req, reply) => {
        const a = await s.addAction(
          req.params.id,
          {
            kind: req.body.kind as ActionKind,
            description: req.body.description,
            ...(req.body.owner ? { owner: req.body.owner } : {}),
            ...(req.body.dueAt ? { dueAt: ms(req.body.dueAt)! } : {}),
          },
          actorOf(req),
          auditSource(req),
        );
        return reply.code(201).send({
          ...a,
          dueAt: isoOrNull(a.dueAt),
          createdAt: isoOrNull(a.createdAt)!,
          closedAt: isoOrNull(a.closedAt),
        });
      },
    );

    app.post(
      '/incidents/:id/actions/:actionId/close',
      {
        config: manage,
        schema: {
          tags,
          summary: 'close an action, with its outcome',
          params: Type.Object({ id: Uuid, actionId: Uuid }, { additionalProperties: false }),
          body: Type.Optional(
            Type.Object({ outcome: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
          ),
          response: { 200: ActionSchema, ...errs },
        },
      },
      async (req) => {
        const a = await s.closeAction(
          req.params.id,
          req.params.actionId,
          req.body?.outcome,
          actorOf(req),
          auditSource(req),
        );
        return { ...a, dueAt: isoOrNull(a.dueAt), createdAt: isoOrNull(a.createdAt)!, closedAt: isoOrNull(a.closedAt) };
      },
    );

    app.put(
      '/incidents/:id/affected',
      {
        config: manage,
        schema: {
          tags,
          summary:
            'what the incident affects: components (names), workspaces and users (ids); each list given replaces the previous one',
          params: IdParams,
          body: Type.Object(
            {
              components: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 })),
              workspaces: Type.Optional(Ids),
              users: Type.Optional(Ids),
            },
            { additionalProperties: false },
          ),
          response: { 200: IncidentSchema, ...errs },
        },
      },
      async (req) => full(await s.setAffected(req.params.id, req.body, actorOf(req), auditSource(req))),
    );

    app.get(
      '/incidents/:id/report',
      {
        config: read,
        schema: {
          tags,
          summary: 'the report: register entry, GDPR art. 33 notification content, DORA fields; JSON or CSV (audited)',
          params: IdParams,
          querystring: Type.Object({ format: lit(['json', 'csv'] as const) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const i = await s.get(req.params.id);
        await s.recordExport(i.id, req.query.format, actorOf(req), auditSource(req));
        const report = incidentReport(i, s.breachClock(i), {
          applianceId: o.applianceId,
          organisation: o.organisation,
          generatedAt: Date.now(),
        });
        reply
          .header('cache-control', 'no-store')
          .header('content-disposition', `attachment; filename="incident-${i.id}.${req.query.format}"`);
        if (req.query.format === 'csv') return reply.type('text/csv; charset=utf-8').send(reportCsv(report));
        return reply.type('application/json; charset=utf-8').send(JSON.stringify(report, null, 2));
      },
    );
  };
}
