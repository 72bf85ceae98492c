import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import { auditSource } from '../audit/index.js';
import { errors } from '../shared/errors.js';
import type { PrivacyService } from './service.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const ZipReply = { description: 'the zip of JSON and CSV (docs/gdpr.md "Export")', content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } } };

const sendZip = (rep: FastifyReply, zip: Buffer, userId: string) =>
  rep
    .header('content-type', 'application/zip')
    // the id, never the name: the file name lands in the browser's history and download list
    .header('content-disposition', `attachment; filename="coffre-person-${userId}.zip"`)
    .send(zip);

/**
 * The personal-data API under /api/v1: a person's own export, an admin's export of anyone (both
 * audited as `user.export`).
 */
export function privacyRoutes(p: PrivacyService): FastifyPluginAsync {
  return async (app) => {
    app.get('/users/me/export', { config: { permission: 'self' }, schema: { tags: ['privacy'], summary: 'everything the appliance holds about you, as a zip of JSON and CSV', response: { 200: ZipReply } } }, async (req, rep) => {
      const userId = req.actor?.userId;
      if (!userId) throw errors.forbidden();
      const r = await p.exportZip(userId, req.actor!.id, auditSource(req));
      return sendZip(rep, r.zip, r.userId);
    });

    app.get('/users/:id/export', { config: { permission: 'users:manage' }, schema: { tags: ['privacy'], summary: "everything the appliance holds about one person, as a zip of JSON and CSV (audited)", params: IdParams, response: { 200: ZipReply } } }, async (req, rep) => {
      const r = await p.exportZip((req.params as { id: string }).id, req.actor!.id, auditSource(req));
      return sendZip(rep, r.zip, r.userId);
    });
  };
}
