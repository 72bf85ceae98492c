import type { Me } from '../session.js';
import type { Route } from '../router.js';
import { PageHeader } from '../ui.js';

export function AuditPage(_: { me: Me; route: Route }) {
  return <PageHeader title="Audit trail" />;
}
