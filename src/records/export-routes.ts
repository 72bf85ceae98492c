import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { PassThrough } from 'node:stream';
import tar from 'tar-stream';
import { PERMISSIONS } from '../access/index.js';
import { auditSource, type Auditor, type AuditEvent } from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { Logger } from '../shared/logger.js';
import { errors, isAppError } from '../shared/errors.js';
import { writeWorkspaceExport, type ExportSources } from './export.js';
import { recordsErrors } from './errors.js';
import { userScope, writeUserExport, type UserExportSources } from './user-export.js';
import * as S from './schemas.js';

export interface ExportRoutesOptions {
  sources: ExportSources;
  userSources: UserExportSources;
  db: Kysely<RecordsSchema>;
  audit: Auditor;
  log: Logger;
}

const idList = (ids: string[]) => (ids.length > 3 ? `${ids.slice(0, 3).join(',')},+${ids.length - 3}` : ids.join(','));

/**
 * Sends a tar that `write` fills; a failure half-way cuts the stream (the client sees an
 * incomplete archive and keeps nothing) and is logged and audited with `event`.
 */
function sendTar(
  o: ExportRoutesOptions,
  reply: FastifyReply,
  fileName: string,
  event: Omit<AuditEvent, 'outcome'>,
  write: (pack: tar.Pack) => Promise<unknown>,
) {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  void write(pack)
    .then(() => pack.finalize())
    .catch((e: unknown) => {
      o.log.error({ code: isAppError(e) ? e.code : undefined, action: event.action }, 'export cut short');
      void o.audit
        .recordNow({ ...event, outcome: 'failure', reason: isAppError(e) ? e.code : 'ERROR' })
        .catch(() => undefined);
      out.destroy(e as Error);
      pack.destroy();
    });
  return reply
    .header('content-type', 'application/x-tar')
    .header('content-disposition', `attachment; filename="${fileName}"`)
    .send(out);
}

/**
 * GET /workspaces/{id}/export: the whole workspace in one request, as a tar stream (owners of the
 * workspace only: an admin who is not its owner gets the 404 of a missing workspace, audited).
 */
export const exportRoutes: FastifyPluginAsync<ExportRoutesOptions> = async (app, o) => {
  app.get(
    '/workspaces/:id/export',
    {
      config: { permission: PERMISSIONS.workspaceUse, longBody: true },
      schema: {
        tags: ['records'],
        summary:
          'everything in a workspace in one request: a POSIX tar of every document with all its versions, names, tags, descriptions, folders, deposit receipts, the audit extract, the daily seals and a signed manifest of SHA-256s (owners only)',
        params: S.IdParams,
        response: { 200: { type: 'string', format: 'binary' }, ...S.errs },
      },
    },
    async (req: FastifyRequest, reply) => {
      if (!req.actor) throw errors.unauthenticated();
      const c = { actor: req.actor, source: auditSource(req) };
      const { id } = req.params as { id: string };
      await o.sources.vault.workspaceRole(c, id, 'owner', 'workspace.export');
      await o.audit.recordNow({
        action: 'workspace.export',
        actor: c.actor.id,
        outcome: 'success',
        targets: { workspace: id },
        source: c.source,
      });
      return sendTar(
        o,
        reply,
        `coffre-export-${id}.tar`,
        { action: 'workspace.export', actor: c.actor.id, targets: { workspace: id }, source: c.source },
        (pack) => writeWorkspaceExport(o.sources, c, id, pack),
      );
    },
  );

  app.get(
    '/users/:id/archive',
    {
      config: { permission: PERMISSIONS.workspaceUse, longBody: true },
      schema: {
        tags: ['records'],
        summary:
          "everything traceable to one person in one request: a POSIX tar of the versions they deposited (original bytes, document metadata, deposit receipts), the audit records of what they did, the daily seals and a signed manifest. A person gets their own from every workspace they are a member of; a workspace owner gets a member's from the workspaces they own; anyone else the 404 of an unknown user",
        params: S.IdParams,
        querystring: S.PeriodQuery,
        response: { 200: { type: 'string', format: 'binary' }, ...S.errs },
      },
    },
    async (req: FastifyRequest, reply) => {
      if (!req.actor) throw errors.unauthenticated();
      const c = { actor: req.actor, source: auditSource(req) };
      const { id } = req.params as { id: string };
      const q = req.query as { from?: string; to?: string };
      const period = { ...(q.from ? { from: Date.parse(q.from) } : {}), ...(q.to ? { to: Date.parse(q.to) } : {}) };
      if (period.from !== undefined && period.to !== undefined && period.to <= period.from)
        throw recordsErrors.invalidInput('`to` must come after `from`');
      const scope = await userScope(o.db, req.actor, id);
      if (!scope) {
        await o.audit.recordNow({
          action: 'user.archive',
          actor: c.actor.id,
          outcome: 'denied',
          reason: 'NOT_FOUND',
          targets: { user: id },
          source: c.source,
        });
        throw errors.notFound('user');
      }
      const event = {
        action: 'user.archive',
        actor: c.actor.id,
        targets: { user: id, workspaces: idList(scope.workspaces.map((w) => w.id)) },
        source: c.source,
      };
      await o.audit.recordNow({ ...event, outcome: 'success' });
      return sendTar(o, reply, `coffre-export-user-${id}.tar`, event, (pack) =>
        writeUserExport(o.userSources, c, scope, period, pack),
      );
    },
  );
};
