import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import tar from 'tar-stream';
import { PERMISSIONS } from '../access/index.js';
import { auditSource, type Auditor } from '../audit/index.js';
import type { Logger } from '../shared/logger.js';
import { errors, isAppError } from '../shared/errors.js';
import { writeWorkspaceExport, type ExportSources } from './export.js';
import * as S from './schemas.js';

export interface ExportRoutesOptions {
  sources: ExportSources;
  audit: Auditor;
  log: Logger;
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
      const pack = tar.pack();
      const out = new PassThrough();
      pack.pipe(out);
      void writeWorkspaceExport(o.sources, c, id, pack)
        .then(() => pack.finalize())
        .catch((e: unknown) => {
          o.log.error({ code: isAppError(e) ? e.code : undefined, workspace: id }, 'workspace export cut short');
          void o.audit
            .recordNow({
              action: 'workspace.export',
              actor: c.actor.id,
              outcome: 'failure',
              reason: isAppError(e) ? e.code : 'ERROR',
              targets: { workspace: id },
              source: c.source,
            })
            .catch(() => undefined);
          out.destroy(e as Error);
          pack.destroy();
        });
      return reply
        .header('content-type', 'application/x-tar')
        .header('content-disposition', `attachment; filename="coffre-export-${id}.tar"`)
        .send(out);
    },
  );
};
