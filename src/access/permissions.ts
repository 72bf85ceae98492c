/**
 * Every permission a route may declare. The access module maps appliance roles to
 * these; workspace-level need-to-know (owner/editor/viewer) is checked in addition by the handler
 * through the policy (`Policy.can` / `Policy.requireWorkspace`), because it depends on the resource.
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
  /** acknowledge and resolve alerts */
  monitoringManage: 'monitoring:manage',
  backupRead: 'backup:read',
  backupRun: 'backup:run',
  backupManage: 'backup:manage',
  /** approve or reject another person's change to backup targets or escrow keys (two-person rule, src/backup/requests.ts) */
  backupApprove: 'backup:approve',
  /** the incident register (read); managing it is `incidents:manage` */
  incidentsRead: 'incidents:read',
  incidentsManage: 'incidents:manage',
  auditRead: 'audit:read',
  auditVerify: 'audit:verify',
  /** retention policies, legal holds, destruction certificates (changes need a second person) */
  recordsManage: 'records:manage',
  /**
   * a token scope only (no role grants it, no route declares it): an API token may change its
   * user's password only when created with this scope explicitly (never by default)
   */
  passwordChange: 'password:change',
} as const;

/** scopes a token holds only when asked for by name (not part of any role's default token) */
export const OPT_IN_SCOPES: readonly PermissionName[] = ['password:change'];

export type PermissionName = (typeof PERMISSIONS)[keyof typeof PERMISSIONS];
export const ALL_PERMISSIONS: readonly PermissionName[] = Object.values(PERMISSIONS);

export const APPLIANCE_ROLES = ['admin', 'backup-operator', 'auditor', 'member', 'records-manager'] as const;
export type ApplianceRole = (typeof APPLIANCE_ROLES)[number];
export const isApplianceRole = (r: string): r is ApplianceRole => (APPLIANCE_ROLES as readonly string[]).includes(r);

/** Which appliance role grants which permissions (owned by the access module). */
export const ROLE_PERMISSIONS: Record<ApplianceRole, readonly PermissionName[]> = {
  admin: [
    'self',
    'users:manage',
    'users:read',
    'access:review',
    'keys:read',
    'keys:manage',
    'settings:manage',
    'monitoring:read',
    'monitoring:manage',
    'incidents:read',
    'incidents:manage',
    'workspace:create',
    'workspace:use',
    'backup:approve',
  ],
  'backup-operator': ['self', 'backup:read', 'backup:run', 'backup:manage', 'monitoring:read', 'monitoring:manage'],
  auditor: [
    'self',
    'audit:read',
    'audit:verify',
    'users:read',
    'backup:read',
    'keys:read',
    'monitoring:read',
    'incidents:read',
  ],
  member: ['self', 'workspace:create', 'workspace:use'],
  /** the archivist: retention and holds by ids, no workspace content */
  'records-manager': ['self', 'records:manage'],
};

export const WORKSPACE_ROLES = ['owner', 'editor', 'viewer'] as const;
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number];
export const isWorkspaceRole = (r: string): r is WorkspaceRole => (WORKSPACE_ROLES as readonly string[]).includes(r);

/**
 * What a workspace role allows inside its workspace (need-to-know, Z2). Every one of these also
 * needs the appliance permission `workspace:use`.
 */
export const WORKSPACE_ACTIONS = {
  /** see the workspace, its folder tree and document metadata */
  read: 'workspace:read',
  /** read document content */
  docRead: 'doc:read',
  /** add documents and versions, rename, move */
  docWrite: 'doc:write',
  docDelete: 'doc:delete',
  /** add and remove members, change roles, answer its access reviews */
  members: 'workspace:members',
} as const;
export type WorkspaceAction = (typeof WORKSPACE_ACTIONS)[keyof typeof WORKSPACE_ACTIONS];

export const WORKSPACE_ROLE_ACTIONS: Record<WorkspaceRole, readonly WorkspaceAction[]> = {
  owner: ['workspace:read', 'doc:read', 'doc:write', 'doc:delete', 'workspace:members'],
  editor: ['workspace:read', 'doc:read', 'doc:write', 'doc:delete'],
  viewer: ['workspace:read', 'doc:read'],
};
