import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import { auditSource } from '../audit/index.js';
import { errors } from '../shared/errors.js';
import { pickLanguage, type Language } from '../shared/i18n/index.js';
import type { PrivacyService } from './service.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const ZipReply = {
  description: 'the zip of JSON and CSV (docs/gdpr.md "Export")',
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
};

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
export function privacyRoutes(p: PrivacyService, ropa: (lang: Language) => string): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/privacy/ropa',
      {
        config: { permission: 'users:read' },
        schema: {
          tags: ['privacy'],
          summary:
            'the record of processing activities (GDPR art. 30), generated from the configuration, as printable HTML in French or English (?lang=, else your language, else Accept-Language)',
          querystring: Type.Object(
            { lang: Type.Optional(Type.Union([Type.Literal('en'), Type.Literal('fr')])) },
            { additionalProperties: false },
          ),
          response: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      async (req, rep) => {
        const q = (req.query as { lang?: Language }).lang;
        const h = req.headers['accept-language'];
        const lang = q ?? pickLanguage(req.actor?.language, typeof h === 'string' ? h : undefined);
        return rep.header('content-type', 'text/html; charset=utf-8').header('content-language', lang).send(ropa(lang));
      },
    );

    app.get(
      '/users/me/export',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['privacy'],
          summary: 'everything the appliance holds about you, as a zip of JSON and CSV',
          response: { 200: ZipReply },
        },
      },
      async (req, rep) => {
        const userId = req.actor?.userId;
        if (!userId) throw errors.forbidden();
        const r = await p.exportZip(userId, req.actor!.id, auditSource(req));
        return sendZip(rep, r.zip, r.userId);
      },
    );

    app.get(
      '/users/:id/export',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['privacy'],
          summary: 'everything the appliance holds about one person, as a zip of JSON and CSV (audited)',
          params: IdParams,
          response: { 200: ZipReply },
        },
      },
      async (req, rep) => {
        const r = await p.exportZip((req.params as { id: string }).id, req.actor!.id, auditSource(req));
        return sendZip(rep, r.zip, r.userId);
      },
    );

    app.get(
      '/users/:id/erasure',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['privacy'],
          summary:
            'what erasing this person involves: the workspaces they alone own, and whether the account can be deleted outright',
          params: IdParams,
          response: {
            200: Type.Object({
              userId: Type.String(),
              state: Type.String(),
              soleOwned: Type.Array(Type.String()),
              memberships: Type.Integer(),
              signedIn: Type.Boolean(),
              deletable: Type.Boolean(),
            }),
          },
        },
      },
      async (req) => p.plan((req.params as { id: string }).id),
    );

    app.post(
      '/users/:id/erase',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['privacy'],
          summary:
            'erase a person (GDPR art. 17): their e-mail and phone crypto-shredded, name and traces removed, sessions and tokens revoked; the id stays in the audit trail',
          params: IdParams,
          // confirm: the user name (or id) typed again; transferTo or trash: what happens to the workspaces they alone own
          body: Type.Object(
            {
              confirm: Type.String({ minLength: 1, maxLength: 128 }),
              transferTo: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
              trash: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              userId: Type.String(),
              sessionsEnded: Type.Integer(),
              tokensRevoked: Type.Integer(),
              workspacesTransferred: Type.Array(Type.String()),
              workspacesTrashed: Type.Array(Type.String()),
              documentsTrashed: Type.Integer(),
              keyDestroyed: Type.Boolean(),
              scrubbed: Type.Boolean(),
            }),
          },
        },
      },
      async (req) => {
        const b = req.body as { confirm: string; transferTo?: string; trash?: boolean };
        if (b.transferTo !== undefined && b.trash) throw errors.usage('give either transferTo or trash, not both');
        const handover =
          b.transferTo !== undefined ? { transferTo: b.transferTo } : b.trash ? ({ trash: true } as const) : undefined;
        return p.erase((req.params as { id: string }).id, handover, req.actor!.id, auditSource(req), b.confirm);
      },
    );

    app.post(
      '/users/:id/delete',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['privacy'],
          summary: 'delete an account that never signed in and holds no membership (others are erased instead)',
          params: IdParams,
          body: Type.Object(
            { confirm: Type.String({ minLength: 1, maxLength: 128 }) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ userId: Type.String(), scrubbed: Type.Boolean() }) },
        },
      },
      async (req) =>
        p.remove(
          (req.params as { id: string }).id,
          req.actor!.id,
          auditSource(req),
          (req.body as { confirm: string }).confirm,
        ),
    );
  };
}
