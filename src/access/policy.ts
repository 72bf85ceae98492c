import type { Actor } from '../http/index.js';
import type { AccessDb } from '../db/index.js';
import { AppError, errors } from '../shared/errors.js';
import {
  isApplianceRole,
  isWorkspaceRole,
  ROLE_PERMISSIONS,
  WORKSPACE_ROLE_ACTIONS,
  type PermissionName,
  type WorkspaceAction,
  type WorkspaceRole,
} from './permissions.js';

export type Resource = { type: 'appliance' } | { type: 'workspace'; id: string };

/**
 * The one policy (deny by default), used by the route gate and by services:
 * `can(actor, action, resource)`.
 *
 * - appliance permissions come from the actor's roles (ROLE_PERMISSIONS), narrowed by the scopes
 *   of an API token;
 * - workspace actions need `workspace:use` AND a membership of that workspace whose role allows
 *   the action: nobody, admins included, sees a workspace they are not a member of (Z2);
 * - `local:` actors (the CLI on the appliance itself, as root or the service user) hold every
 *   appliance permission but no workspace content either.
 */
export class Policy {
  constructor(private readonly db: AccessDb) {}

  permissionsOf(actor: Actor): Set<PermissionName> {
    const out = new Set<PermissionName>();
    for (const r of actor.roles) if (isApplianceRole(r)) for (const p of ROLE_PERMISSIONS[r]) out.add(p);
    if (actor.kind === 'token') {
      const scopes = new Set(actor.scopes ?? []);
      for (const p of [...out]) if (!scopes.has(p)) out.delete(p);
    }
    return out;
  }

  hasPermission(actor: Actor, permission: string): boolean {
    return this.permissionsOf(actor).has(permission as PermissionName);
  }

  async workspaceRole(actor: Actor, workspaceId: string): Promise<WorkspaceRole | undefined> {
    if (!actor.userId) return undefined;
    const row = await this.db
      .selectFrom('workspace_members')
      .innerJoin('workspaces', 'workspaces.id', 'workspace_members.workspace_id')
      .select('workspace_members.role')
      .where('workspace_members.workspace_id', '=', workspaceId)
      .where('workspace_members.user_id', '=', actor.userId)
      .where('workspaces.state', '=', 'active')
      .executeTakeFirst();
    return row && isWorkspaceRole(row.role) ? row.role : undefined;
  }

  async can(actor: Actor, action: string, resource: Resource = { type: 'appliance' }): Promise<boolean> {
    if (resource.type === 'appliance') return this.hasPermission(actor, action);
    if (!this.hasPermission(actor, 'workspace:use')) return false;
    const role = await this.workspaceRole(actor, resource.id);
    return role !== undefined && (WORKSPACE_ROLE_ACTIONS[role] as readonly string[]).includes(action);
  }

  /**
   * For handlers: throws 404 when the actor is not a member (the workspace's existence is itself
   * need-to-know), 403 when a member's role does not allow the action. Returns the role.
   */
  async requireWorkspace(actor: Actor, workspaceId: string, action: WorkspaceAction): Promise<WorkspaceRole> {
    if (!this.hasPermission(actor, 'workspace:use')) throw errors.forbidden();
    const role = await this.workspaceRole(actor, workspaceId);
    if (!role) throw errors.notFound('workspace');
    if (!(WORKSPACE_ROLE_ACTIONS[role] as readonly string[]).includes(action))
      throw new AppError('FORBIDDEN', `your role in this workspace (${role}) does not allow this`, { httpStatus: 403 });
    return role;
  }
}
