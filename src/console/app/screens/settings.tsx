import type { Me } from '../session.js';
import { Card, EmptyState, PageHeader } from '../ui.js';

export function SettingsPage(_: { me: Me }) {
  return (
    <>
      <PageHeader title="Settings" />
      <Card>
        <EmptyState icon="settings" title="No setting can be changed online yet" />
      </Card>
    </>
  );
}
