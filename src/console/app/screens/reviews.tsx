import type { Me } from '../session.js';
import { Card, EmptyState, PageHeader } from '../ui.js';

export function ReviewsPage(_: { me: Me }) {
  return (
    <>
      <PageHeader title="Access reviews" description="Periodic campaigns in which owners confirm who may keep access." />
      <Card>
        <EmptyState icon="list" title="Access reviews are not available on this appliance yet" />
      </Card>
    </>
  );
}
export function ReviewPage(_: { me: Me; id: string }) {
  return <ReviewsPage me={_.me} />;
}
