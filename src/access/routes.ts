import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Workspaces } from './workspaces.js';
import { auditSource } from '../audit/index.js';
import { AccessReviews } from './reviews.js';
import { AppError, errors } from '../shared/errors.js';

const WorkspaceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  quotaBytes: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String(),
  state: Type.String(),
  role: Type.String(),
});
const MemberSchema = Type.Object({
  userId: Type.String(),
  username: Type.String(),
  role: Type.String(),
  addedAt: Type.String(),
});
const WsParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const MemberParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  userId: Type.String({ minLength: 1, maxLength: 100 }),
});
const Ok = Type.Object({ status: Type.Literal('ok') });

/** Workspaces and membership under /api/v1 (need-to-know: non-members get 404). */
export function workspaceRoutes(ws: Workspaces): FastifyPluginAsync {
  return async (app) => {
    app.post(
      '/workspaces',
      {
        config: { permission: 'workspace:create' },
        // absent, null or "default": vault.defaultQuotaBytes; 0: unlimited; N: N bytes (only admins set
        // 0 or more than the default). The validator would coerce null to 0 (unlimited): taken out before it
        preValidation: async (req) => {
          const b = req.body as { quotaBytes?: unknown } | null;
          if (b && typeof b === 'object' && b.quotaBytes === null) delete b.quotaBytes;
        },
        schema: {
          tags: ['workspaces'],
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              quotaBytes: Type.Optional(
                Type.Union([
                  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
                  Type.Literal('default'),
                  Type.Null(),
                ]),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ id: Type.String() }) },
        },
      },
      async (req, rep) => {
        const b = req.body as { name: string; quotaBytes?: number | 'default' | null };
        const quotaBytes = typeof b.quotaBytes === 'number' ? b.quotaBytes : undefined;
        return rep.code(201).send(await ws.create(req.actor!, { name: b.name, quotaBytes }, auditSource(req)));
      },
    );
    app.get(
      '/workspaces',
      {
        config: { permission: 'workspace:use' },
        schema: { tags: ['workspaces'], response: { 200: Type.Object({ workspaces: Type.Array(WorkspaceSchema) }) } },
      },
      async (req) => ({
        workspaces: await ws.listFor(req.actor!),
      }),
    );
    app.get(
      '/workspaces/:id',
      {
        config: { permission: 'workspace:use' },
        schema: { tags: ['workspaces'], params: WsParams, response: { 200: WorkspaceSchema } },
      },
      async (req) => ws.get(req.actor!, (req.params as { id: string }).id, auditSource(req)),
    );
    // only admins set or raise quotas (docs/identity.md "Workspaces"): no membership needed, no content shown
    app.patch(
      '/workspaces/:id/quota',
      {
        config: { permission: 'settings:manage' },
        // the validator coerces null to 0 (unlimited): refused before it
        preValidation: async (req) => {
          const b = req.body as { quotaBytes?: unknown } | null;
          if (b && typeof b === 'object' && b.quotaBytes === null)
            throw errors.usage('quotaBytes: a number of bytes (0: unlimited) or "default"');
        },
        schema: {
          tags: ['workspaces'],
          params: WsParams,
          // "default" rather than null: the validator coerces null to 0 (unlimited) before a union's null branch
          body: Type.Object(
            {
              quotaBytes: Type.Union([
                Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
                Type.Literal('default'),
              ]),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object(
              { id: Type.String(), quotaBytes: Type.Union([Type.Integer(), Type.Null()]) },
              { additionalProperties: false },
            ),
          },
        },
      },
      async (req) => {
        const q = (req.body as { quotaBytes: number | 'default' }).quotaBytes;
        return ws.setQuota(req.actor!, (req.params as { id: string }).id, q === 'default' ? null : q, auditSource(req));
      },
    );
    app.get(
      '/workspaces/:id/members',
      {
        config: { permission: 'workspace:use' },
        schema: {
          tags: ['workspaces'],
          params: WsParams,
          response: { 200: Type.Object({ members: Type.Array(MemberSchema) }) },
        },
      },
      async (req) => ({
        members: await ws.members(req.actor!, (req.params as { id: string }).id, auditSource(req)),
      }),
    );
    app.put(
      '/workspaces/:id/members/:userId',
      {
        config: { permission: 'workspace:use' },
        schema: {
          tags: ['workspaces'],
          params: MemberParams,
          body: Type.Object({ role: Type.String() }, { additionalProperties: false }),
          response: { 200: Ok },
        },
      },
      async (req) => {
        const p = req.params as { id: string; userId: string };
        await ws.setMember(req.actor!, p.id, p.userId, (req.body as { role: string }).role, auditSource(req));
        return { status: 'ok' as const };
      },
    );
    // the owner's member picker: one person by exact user name or e-mail (need-to-know, audited,
    // rate-limited); the typed text travels in the body, never in the URL
    app.post(
      '/workspaces/:id/member-candidates',
      {
        config: { permission: 'workspace:use', rateLimit: { max: 60, timeWindow: 60_000 } },
        schema: {
          tags: ['workspaces'],
          params: WsParams,
          body: Type.Object({ q: Type.String({ minLength: 2, maxLength: 254 }) }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              users: Type.Array(
                Type.Object(
                  { userId: Type.String(), username: Type.String(), member: Type.Boolean() },
                  { additionalProperties: false },
                ),
              ),
            }),
          },
        },
      },
      async (req, rep) => {
        const users = await ws
          .candidates(req.actor!, (req.params as { id: string }).id, (req.body as { q: string }).q, auditSource(req))
          .catch((e: unknown) => {
            if (e instanceof AppError && e.code === 'RATE_LIMITED')
              void rep.header('retry-after', String((e.details as { retryAfterSeconds: number }).retryAfterSeconds));
            throw e;
          });
        return { users };
      },
    );
    // an admin's user page: a person's workspaces as the access review shows them (ids and roles;
    // names only of the workspaces the admin is a member of)
    app.get(
      '/users/:id/workspaces',
      {
        config: { permission: 'access:review' },
        schema: {
          tags: ['users'],
          params: WsParams,
          response: {
            200: Type.Object({
              memberships: Type.Array(
                Type.Object(
                  {
                    workspaceId: Type.String(),
                    role: Type.String(),
                    addedAt: Type.String(),
                    name: Type.Union([Type.String(), Type.Null()]),
                  },
                  { additionalProperties: false },
                ),
              ),
            }),
          },
        },
      },
      async (req) => ({
        memberships: await ws.membershipsOf(req.actor!, (req.params as { id: string }).id, auditSource(req)),
      }),
    );
    app.delete(
      '/workspaces/:id/members/:userId',
      {
        config: { permission: 'workspace:use' },
        schema: { tags: ['workspaces'], params: MemberParams, response: { 200: Ok } },
      },
      async (req) => {
        const p = req.params as { id: string; userId: string };
        await ws.removeMember(req.actor!, p.id, p.userId, auditSource(req));
        return { status: 'ok' as const };
      },
    );
  };
}

const ReviewSchema = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  dueAt: Type.String(),
  closedAt: Type.Union([Type.String(), Type.Null()]),
  pending: Type.Integer(),
  total: Type.Integer(),
});
const Nullable = (t: ReturnType<typeof Type.String>) => Type.Union([t, Type.Null()]);
const ItemSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  userId: Type.String(),
  username: Type.String(),
  workspaceId: Nullable(Type.String()),
  workspaceName: Nullable(Type.String()),
  tokenId: Nullable(Type.String()),
  tokenName: Nullable(Type.String()),
  role: Nullable(Type.String()),
  reviewer: Type.String(),
  lastSeenAt: Nullable(Type.String()),
  idle: Type.Boolean(),
  decision: Nullable(Type.String()),
  decidedBy: Nullable(Type.String()),
  decidedByName: Nullable(Type.String()),
  decidedAt: Nullable(Type.String()),
  self: Type.Boolean(),
});

/** Access reviews (Z4) under /api/v1/access-reviews. */
export function reviewRoutes(reviews: AccessReviews): FastifyPluginAsync {
  return async (app) => {
    app.post(
      '/access-reviews',
      {
        config: { permission: 'access:review' },
        schema: { tags: ['access'], response: { 201: Type.Object({ id: Type.String(), items: Type.Integer() }) } },
      },
      async (req, rep) => rep.code(201).send(await reviews.start(req.actor!.id, auditSource(req))),
    );
    // owners answer for their workspaces, so listing needs only `self`; items are filtered per caller
    app.get(
      '/access-reviews',
      {
        config: { permission: 'self' },
        schema: { tags: ['access'], response: { 200: Type.Object({ reviews: Type.Array(ReviewSchema) }) } },
      },
      async () => ({ reviews: await reviews.list() }),
    );
    app.get(
      '/access-reviews/export',
      {
        config: { permission: 'access:review' },
        schema: {
          tags: ['access'],
          querystring: Type.Object(
            { format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Unknown({
              description: 'JSON {generatedAt, users[]} or CSV (format=csv); ids and names only, never a secret',
            }),
          },
        },
      },
      async (req, rep) => {
        // L4: every export of the directory is recorded before it is made (fail closed)
        await reviews.recordExport(
          req.actor!.id,
          (req.query as { format?: string }).format ?? 'json',
          auditSource(req),
        );
        const rows = await reviews.exportRows();
        if ((req.query as { format?: string }).format === 'csv') {
          return rep
            .header('content-type', 'text/csv; charset=utf-8')
            .header('content-disposition', 'attachment; filename="coffre-access.csv"')
            .send(AccessReviews.toCsv(rows));
        }
        return rep
          .header('content-type', 'application/json; charset=utf-8')
          .send(JSON.stringify({ generatedAt: new Date().toISOString(), users: rows }));
      },
    );
    app.post(
      '/access-reviews/:id/remind',
      {
        config: { permission: 'access:review' },
        schema: {
          tags: ['access'],
          params: WsParams,
          response: { 200: Type.Object({ reviewers: Type.Integer(), reminded: Type.Integer() }) },
        },
      },
      async (req) => reviews.remindNow((req.params as { id: string }).id, req.actor!.id, auditSource(req)),
    );
    app.get(
      '/access-reviews/:id/items',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['access'],
          params: WsParams,
          response: { 200: Type.Object({ items: Type.Array(ItemSchema) }) },
        },
      },
      async (req) => ({
        items: await reviews.items(req.actor!, (req.params as { id: string }).id),
      }),
    );
    app.post(
      '/access-reviews/:id/items/:itemId',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['access'],
          params: Type.Object({ id: Type.String({ maxLength: 100 }), itemId: Type.String({ maxLength: 100 }) }),
          body: Type.Object(
            { decision: Type.Union([Type.Literal('confirm'), Type.Literal('revoke')]) },
            { additionalProperties: false },
          ),
          response: { 200: Ok },
        },
      },
      async (req) => {
        const p = req.params as { id: string; itemId: string };
        await reviews.decide(
          req.actor!,
          p.id,
          p.itemId,
          (req.body as { decision: 'confirm' | 'revoke' }).decision,
          auditSource(req),
        );
        return { status: 'ok' as const };
      },
    );
  };
}
