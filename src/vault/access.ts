import type { VaultDb } from '../db/index.js';
import type { WorkspaceRole } from '../access/index.js';
import type { Actor } from '../http/index.js';
import type { WorkspaceAccess, WorkspaceView } from './types.js';

/** The part of the access module's Policy the vault relies on. */
export interface WorkspacePolicy {
  hasPermission(actor: Actor, permission: string): boolean;
  /** the actor's role in an active workspace; undefined when not a member (admins included) */
  workspaceRole(actor: Actor, workspaceId: string): Promise<WorkspaceRole | undefined>;
}

/**
 * Need-to-know through the access module's policy: `workspace:use` and a membership, then the
 * workspace's quota from its row. Anything else (unknown workspace, not a member, admin who is not
 * a member, archived workspace) is null: the vault answers 404 without telling which.
 */
export function policyAccess(policy: WorkspacePolicy, db: VaultDb): WorkspaceAccess {
  return {
    async view(actor: Actor, workspaceId: string): Promise<WorkspaceView | null> {
      if (!policy.hasPermission(actor, 'workspace:use')) return null;
      const role = await policy.workspaceRole(actor, workspaceId);
      if (!role) return null;
      const ws = await db
        .selectFrom('workspaces')
        .select(['quota_bytes', 'state'])
        .where('id', '=', workspaceId)
        .executeTakeFirst();
      if (!ws) return null;
      return {
        id: workspaceId,
        role,
        quotaBytes: ws.quota_bytes === null ? null : Number(ws.quota_bytes),
        writable: ws.state === 'active',
      };
    },
  };
}
