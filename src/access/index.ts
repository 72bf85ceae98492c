export { Policy, type Resource } from './policy.js';
export {
  Workspaces,
  type WorkspaceView,
  type MemberView,
  type PickerDirectory,
  type WorkspaceLimits,
} from './workspaces.js';
export * from './permissions.js';
export { AccessReviews } from './reviews.js';
