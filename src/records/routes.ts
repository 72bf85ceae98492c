import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { auditSource, type Auditor } from '../audit/index.js';
import type { Kysely } from 'kysely';
import type { RecordsSchema } from '../db/index.js';
import { listCertificates } from './certificates.js';
import { dbActorDirectory } from './actors.js';
import type { RecordsRequests } from './requests.js';
import { errors } from '../shared/errors.js';
import { recordsErrors } from './errors.js';
import type { HistoryService } from './history.js';
import * as S from './schemas.js';

export interface RecordsRoutesOptions {
  history: HistoryService;
  requests: RecordsRequests;
  db: Kysely<RecordsSchema>;
  audit: Auditor;
  /** the RFC 3161 timestamp of a certificate (src/seals); none: certificates carry none */
  certificateStamp?: (
    id: string,
  ) => Promise<{ state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string }>;
}

const tags = ['records'];

function caller(req: FastifyRequest) {
  if (!req.actor) throw errors.unauthenticated();
  return { actor: req.actor, source: auditSource(req) };
}

const time = (s: string | undefined, name: string): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw recordsErrors.invalidInput(`${name} is not a date-time`);
  return t;
};

/**
 * The records API under /api/v1: a document's history (members, through the vault's need-to-know)
 * and the auditor's access reports (`audit:read`).
 */
export const recordsRoutes: FastifyPluginAsync<RecordsRoutesOptions> = async (app0, opts) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  const { history, requests } = opts;
  const manage = { permission: PERMISSIONS.recordsManage };

  app.get(
    '/documents/:id/history',
    {
      config: { permission: PERMISSIONS.workspaceUse },
      schema: {
        tags,
        summary:
          "who read, downloaded, changed or shared a document: every actor for the workspace's owners, one's own actions for other members",
        params: S.IdParams,
        querystring: S.HistoryQuery,
        response: { 200: S.HistoryReply, ...S.errs },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof S.HistoryQuery>;
      const from = time(q.from, 'from');
      const to = time(q.to, 'to');
      return history.documentHistory(
        caller(req),
        req.params.id,
        { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) },
        { limit: q.limit, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) },
      );
    },
  );

  app.get(
    '/records/access-report',
    {
      config: { permission: PERMISSIONS.auditRead },
      schema: {
        tags,
        summary:
          'accesses to a document or a folder (its sub-folders included) over a period, per actor and action (auditors; ids only)',
        querystring: S.ReportQuery,
        response: { 200: S.ReportReply, ...S.errs, 413: S.ErrorReply },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof S.ReportQuery>;
      return history.accessReport(
        caller(req),
        {
          ...(q.document !== undefined ? { document: q.document } : {}),
          ...(q.folder !== undefined ? { folder: q.folder } : {}),
        },
        { from: time(q.from, 'from')!, to: time(q.to, 'to')! },
      );
    },
  );

  app.get(
    '/records/retention',
    {
      config: manage,
      schema: {
        tags,
        summary: 'retention policies, active legal holds and requests waiting for a second person (ids only)',
        response: { 200: S.OverviewReply, ...S.errs },
      },
    },
    async (req) => {
      const o = await requests.overview(caller(req));
      // user names are not confidential: the page names the two people behind each change
      const ids = new Set<string>();
      for (const p of o.policies) ids.add(p.requestedBy).add(p.approvedBy);
      for (const h of o.holds) ids.add(h.placedBy);
      for (const r of o.requests) {
        ids.add(r.requestedBy);
        if (r.decidedBy) ids.add(r.decidedBy);
      }
      const names = await dbActorDirectory(opts.db).usernames([...ids].map((id) => `user:${id}`));
      return { ...o, people: Object.fromEntries([...names].map(([k, v]) => [k.slice(5), v])) };
    },
  );

  app.post(
    '/records/requests',
    {
      config: manage,
      schema: {
        tags,
        summary:
          'ask for a retention policy change or a hold release; another person holding records:manage approves it',
        body: S.RequestBody,
        response: { 201: S.RequestReply, ...S.errs },
      },
    },
    async (req, reply) => {
      const b = req.body as Static<typeof S.RequestBody>;
      return reply
        .code(201)
        .send(
          await requests.ask(
            caller(req),
            b.kind === 'retention'
              ? { kind: 'retention', scope: b.scope, minDays: b.minDays }
              : b.kind === 'retention-remove'
                ? { kind: 'retention', scope: b.scope, minDays: null }
                : { kind: 'release-hold', holdId: b.holdId },
          ),
        );
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/records/requests/:id/${decision}`,
      {
        config: manage,
        schema: {
          tags,
          summary:
            decision === 'approve'
              ? 'approve and apply a request (not by the person who asked)'
              : 'reject a request (or withdraw one’s own)',
          params: S.IdParams,
          response: { 200: S.RequestReply, ...S.errs },
        },
      },
      async (req) => requests.decide(caller(req), req.params.id, decision),
    );
  }

  app.post(
    '/records/holds',
    {
      config: manage,
      schema: {
        tags,
        summary: 'place a legal hold on a workspace, folder or document: nothing it covers can be trashed or destroyed',
        body: S.HoldBody,
        response: { 201: S.HoldReply, ...S.errs },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await requests.placeHold(caller(req), (req.body as Static<typeof S.HoldBody>).scope)),
  );

  app.get(
    '/records/certificates',
    {
      config: manage,
      schema: {
        tags,
        summary: 'destruction certificates, newest first',
        querystring: S.CertificateQuery,
        response: { 200: S.CertificateList, ...S.errs },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof S.CertificateQuery>;
      return {
        certificates: await listCertificates(
          opts.db,
          opts.audit,
          caller(req),
          {
            limit: q.limit,
            ...(q.document !== undefined ? { document: q.document } : {}),
            ...(q.workspace !== undefined ? { workspace: q.workspace } : {}),
          },
          opts.certificateStamp,
        ),
      };
    },
  );
};
