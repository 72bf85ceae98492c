import type { Me } from '../session.js';
import { Card, EmptyState, PageHeader } from '../ui.js';

export function KeysPage(_: { me: Me }) {
  return (
    <>
      <PageHeader title="Keys" description="The hardware security module and the key-encryption key." />
      <Card>
        <EmptyState icon="key" title="Key status is not available on this appliance yet" />
      </Card>
    </>
  );
}
