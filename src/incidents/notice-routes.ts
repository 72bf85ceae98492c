import { ErrorReply } from '../http/index.js';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { auditSource } from '../audit/index.js';
import { errors } from '../shared/errors.js';
import type { IncidentNotices } from './notices.js';

const tags = ['incidents'];
const Message = Type.Object(
  { en: Type.Optional(Type.String()), fr: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const BannerSchema = Type.Object(
  {
    incidentId: Type.String(),
    updateId: Type.Integer(),
    title: Type.String(),
    severity: Type.String(),
    status: Type.String(),
    at: Type.String(),
    message: Message,
  },
  { additionalProperties: false },
);

/**
 * The in-app banner (docs/incidents.md "Telling the people concerned"): any signed-in user reads
 * the public updates of incidents that affect them and acknowledges them (audited `incident.ack`).
 * The reply's schema carries public fields only.
 */
export function noticeRoutes(notices: IncidentNotices): FastifyPluginAsync {
  return async (app0) => {
    const app = app0.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/incidents/banner',
      {
        config: { permission: PERMISSIONS.self },
        schema: {
          tags,
          summary: 'the incident notices you have not acknowledged (public updates of incidents that affect you)',
          response: { 200: Type.Object({ banners: Type.Array(BannerSchema) }), 401: ErrorReply },
        },
      },
      async (req) => {
        const userId = req.actor?.userId;
        if (!userId) return { banners: [] };
        return {
          banners: (await notices.banners(userId)).map((b) => ({ ...b, at: new Date(b.at).toISOString() })),
        };
      },
    );
    app.post(
      '/incidents/:id/ack',
      {
        config: { permission: PERMISSIONS.self },
        schema: {
          tags,
          summary: 'acknowledge an incident notice up to this update (a newer public update shows it again)',
          params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, { additionalProperties: false }),
          body: Type.Object({ updateId: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
          response: { 204: Type.Null(), 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply },
        },
      },
      async (req, reply) => {
        const userId = req.actor?.userId;
        if (!userId) throw errors.forbidden();
        await notices.acknowledge(req.params.id, req.body.updateId, userId, req.actor!.id, auditSource(req));
        return reply.code(204).send(null);
      },
    );
  };
}
