/**
 * Every permission a route may declare (checklist Z1). The access module maps appliance roles to
 * these; workspace-level need-to-know (owner/editor/viewer) is checked in addition by the handler
 * through the policy, because it depends on the resource.
 *
 * Separation of duties: `admin` manages users, settings, keys and monitoring but holds no
 * `doc:*` or `workspace:*` permission on content it is not a member of.
 */
export const PERMISSIONS = {
  /** any authenticated user acting on their own account (profile, sessions, 2FA, tokens) */
  self: 'self',
  /** create a workspace; read/write inside one also needs membership */
  workspaceCreate: 'workspace:create',
  workspaceUse: 'workspace:use',
  usersManage: 'users:manage',
  usersRead: 'users:read',
  accessReview: 'access:review',
  keysRead: 'keys:read',
  keysManage: 'keys:manage',
  settingsManage: 'settings:manage',
  monitoringRead: 'monitoring:read',
  backupRead: 'backup:read',
  backupRun: 'backup:run',
  backupManage: 'backup:manage',
  auditRead: 'audit:read',
  auditVerify: 'audit:verify',
} as const;

export type PermissionName = (typeof PERMISSIONS)[keyof typeof PERMISSIONS];

export const APPLIANCE_ROLES = ['admin', 'backup-operator', 'auditor', 'member'] as const;
export type ApplianceRole = (typeof APPLIANCE_ROLES)[number];

/** Which appliance role grants which permissions (the access module owns and may refine this). */
export const ROLE_PERMISSIONS: Record<ApplianceRole, readonly PermissionName[]> = {
  admin: ['self', 'users:manage', 'users:read', 'access:review', 'keys:read', 'keys:manage', 'settings:manage', 'monitoring:read', 'workspace:create', 'workspace:use'],
  'backup-operator': ['self', 'backup:read', 'backup:run', 'backup:manage', 'monitoring:read'],
  auditor: ['self', 'audit:read', 'audit:verify', 'users:read', 'backup:read', 'keys:read'],
  member: ['self', 'workspace:create', 'workspace:use'],
};

export const WORKSPACE_ROLES = ['owner', 'editor', 'viewer'] as const;
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number];
