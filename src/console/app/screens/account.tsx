import type { Me } from '../session.js';
import type { Route } from '../router.js';
import { PageHeader, Facts } from '../ui.js';

export function AccountPage({ me }: { me: Me; route: Route }) {
  return (
    <>
      <PageHeader title="My account" />
      <Facts items={[['User name', me.username], ['Role', me.role], ['Second factor', me.mfaMethod ?? 'none']]} />
    </>
  );
}
