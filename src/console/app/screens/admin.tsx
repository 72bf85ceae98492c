import type { Me } from '../session.js';
import { PageHeader } from '../ui.js';

export function UsersPage(_: { me: Me }) {
  return <PageHeader title="Users" />;
}
export function ReviewsPage(_: { me: Me }) {
  return <PageHeader title="Access reviews" />;
}
export function ReviewPage(_: { me: Me; id: string }) {
  return <PageHeader title="Access review" />;
}
export function KeysPage(_: { me: Me }) {
  return <PageHeader title="Keys" />;
}
export function SettingsPage(_: { me: Me }) {
  return <PageHeader title="Settings" />;
}
