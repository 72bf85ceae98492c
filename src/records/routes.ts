import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { auditSource } from '../audit/index.js';
import { errors } from '../shared/errors.js';
import { recordsErrors } from './errors.js';
import type { HistoryService } from './history.js';
import * as S from './schemas.js';

export interface RecordsRoutesOptions {
  history: HistoryService;
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
  const { history } = opts;

  app.get(
    '/documents/:id/history',
    {
      config: { permission: PERMISSIONS.workspaceUse },
      schema: {
        tags,
        summary: "who read, downloaded, changed or shared a document: every actor for the workspace's owners, one's own actions for other members",
        params: S.IdParams,
        querystring: S.HistoryQuery,
        response: { 200: S.HistoryReply, ...S.errs },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof S.HistoryQuery>;
      const from = time(q.from, 'from');
      const to = time(q.to, 'to');
      return history.documentHistory(caller(req), req.params.id, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) }, { limit: q.limit, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) });
    },
  );

  app.get(
    '/records/access-report',
    {
      config: { permission: PERMISSIONS.auditRead },
      schema: {
        tags,
        summary: 'accesses to a document or a folder (its sub-folders included) over a period, per actor and action (auditors; ids only)',
        querystring: S.ReportQuery,
        response: { 200: S.ReportReply, ...S.errs, 413: S.ErrorReply },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof S.ReportQuery>;
      return history.accessReport(caller(req), { ...(q.document !== undefined ? { document: q.document } : {}), ...(q.folder !== undefined ? { folder: q.folder } : {}) }, { from: time(q.from, 'from')!, to: time(q.to, 'to')! });
    },
  );
};
