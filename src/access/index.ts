export { Policy, type Resource } from './policy.js';
export { Workspaces, type WorkspaceView, type MemberView } from './workspaces.js';
export * from './permissions.js';
