import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Workspaces } from './workspaces.js';
import { auditSource } from '../audit/index.js';

const WorkspaceSchema = Type.Object({ id: Type.String(), name: Type.String(), quotaBytes: Type.Union([Type.Integer(), Type.Null()]), createdAt: Type.String(), state: Type.String(), role: Type.String() });
const MemberSchema = Type.Object({ userId: Type.String(), username: Type.String(), role: Type.String(), addedAt: Type.String() });
const WsParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const MemberParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }), userId: Type.String({ minLength: 1, maxLength: 100 }) });
const Ok = Type.Object({ status: Type.Literal('ok') });

/** Workspaces and membership under /api/v1 (need-to-know: non-members get 404). */
export function workspaceRoutes(ws: Workspaces): FastifyPluginAsync {
  return async (app) => {
    app.post(
      '/workspaces',
      {
        config: { permission: 'workspace:create' },
        schema: { tags: ['workspaces'], body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), quotaBytes: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])) }, { additionalProperties: false }), response: { 201: Type.Object({ id: Type.String() }) } },
      },
      async (req, rep) => {
        const b = req.body as { name: string; quotaBytes?: number | null };
        return rep.code(201).send(await ws.create(req.actor!, b, auditSource(req)));
      },
    );
    app.get('/workspaces', { config: { permission: 'workspace:use' }, schema: { tags: ['workspaces'], response: { 200: Type.Object({ workspaces: Type.Array(WorkspaceSchema) }) } } }, async (req) => ({
      workspaces: await ws.listFor(req.actor!),
    }));
    app.get('/workspaces/:id', { config: { permission: 'workspace:use' }, schema: { tags: ['workspaces'], params: WsParams, response: { 200: WorkspaceSchema } } }, async (req) =>
      ws.get(req.actor!, (req.params as { id: string }).id),
    );
    app.get('/workspaces/:id/members', { config: { permission: 'workspace:use' }, schema: { tags: ['workspaces'], params: WsParams, response: { 200: Type.Object({ members: Type.Array(MemberSchema) }) } } }, async (req) => ({
      members: await ws.members(req.actor!, (req.params as { id: string }).id),
    }));
    app.put(
      '/workspaces/:id/members/:userId',
      { config: { permission: 'workspace:use' }, schema: { tags: ['workspaces'], params: MemberParams, body: Type.Object({ role: Type.String() }, { additionalProperties: false }), response: { 200: Ok } } },
      async (req) => {
        const p = req.params as { id: string; userId: string };
        await ws.setMember(req.actor!, p.id, p.userId, (req.body as { role: string }).role, auditSource(req));
        return { status: 'ok' as const };
      },
    );
    app.delete('/workspaces/:id/members/:userId', { config: { permission: 'workspace:use' }, schema: { tags: ['workspaces'], params: MemberParams, response: { 200: Ok } } }, async (req) => {
      const p = req.params as { id: string; userId: string };
      await ws.removeMember(req.actor!, p.id, p.userId, auditSource(req));
      return { status: 'ok' as const };
    });
  };
}
