import type { Me } from '../session.js';
import { PageHeader } from '../ui.js';

export function BackupPage(_: { me: Me }) {
  return <PageHeader title="Backups" />;
}
