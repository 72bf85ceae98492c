import type { Me } from '../session.js';
import type { Route } from '../router.js';
import { EmptyState, PageHeader } from '../ui.js';

export function WorkspacesPage(_: { me: Me }) {
  return (
    <>
      <PageHeader title="Workspaces" />
      <EmptyState title="No workspaces yet" />
    </>
  );
}
export function WorkspacePage(_: { me: Me; ws: string; route: Route }) {
  return <PageHeader title="Workspace" />;
}
export function MembersPage(_: { me: Me; ws: string }) {
  return <PageHeader title="Members" />;
}
export function DocumentPage(_: { me: Me; ws: string; doc: string }) {
  return <PageHeader title="Document" />;
}
