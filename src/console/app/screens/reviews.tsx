import { useState } from 'preact/hooks';
import { get, post, url } from '../api.js';
import { navigate } from '../router.js';
import { can, type Me } from '../session.js';
import { Alert, Badge, Button, Card, EmptyState, ErrorAlert, Loading, PageHeader, Progress, Time, notify, useAction, useAsync } from '../ui.js';

/**
 * Access reviews (src/access): campaigns listing every membership (decided by the
 * workspace's owners), appliance role and API token (decided by admins); accounts idle past the
 * threshold are flagged; "revoke" takes effect at once. Reminders are sent by the appliance's
 * schedule; the export (users × roles × workspaces × tokens × last use) is for the auditors.
 */
interface Review {
  id: string;
  createdAt: string;
  dueAt: string;
  closedAt: string | null;
  pending: number;
  total: number;
}
interface Item {
  id: string;
  kind: 'membership' | 'role' | 'token';
  userId: string;
  username: string;
  workspaceId: string | null;
  tokenId: string | null;
  tokenName: string | null;
  role: string | null;
  reviewer: 'owner' | 'admin';
  lastSeenAt: string | null;
  idle: boolean;
  decision: 'confirm' | 'revoke' | null;
  /** the workspace's name, for reviewers who are members of it */
  workspaceName?: string | null;
  decidedByName?: string | null;
  /** the item is about the caller: another reviewer decides it */
  self?: boolean;
}

export function ReviewsPage({ me }: { me: Me }) {
  const list = useAsync((signal) => get<{ reviews: Review[] }>('/access-reviews', { signal }), []);
  const admin = can(me, 'access:review');
  const open = list.data?.reviews.find((r) => !r.closedAt);
  const start = useAction(async () => {
    const r = await post<{ id: string; items: number }>('/access-reviews');
    notify(`Campaign started: ${r.items} item(s) to review`);
    navigate(`/reviews/${r.id}`);
  });
  return (
    <>
      <PageHeader
        title="Access reviews"
        description="Periodic campaigns in which workspace owners confirm their members and IT admins confirm roles and API tokens. Revoking takes effect at once."
        actions={
          admin ? (
            <>
              <a class="btn btn-secondary" href={url('/access-reviews/export', { format: 'csv' })} download="coffre-access.csv">
                Export (CSV)
              </a>
              <a class="btn btn-secondary" href={url('/access-reviews/export', { format: 'json' })} download="coffre-access.json">
                Export (JSON)
              </a>
              {open ? (
                <a class="btn btn-primary" href={`#/reviews/${encodeURIComponent(open.id)}`}>
                  Open the current campaign
                </a>
              ) : (
                <Button variant="primary" busy={start.busy} disabled={!list.data} onClick={() => void start.run()}>
                  Start a campaign
                </Button>
              )}
            </>
          ) : null
        }
      />
      <ErrorAlert error={list.error ?? start.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && list.data.reviews.length === 0 ? (
        <Card>
          <EmptyState icon="list" title="No campaign yet">
            {admin ? 'Campaigns also start on their own, every quarter by default.' : 'When a campaign starts, the memberships of your workspaces appear here for you to confirm.'}
          </EmptyState>
        </Card>
      ) : null}
      {list.data && list.data.reviews.length ? (
        <Card class="flush">
          <div class="table-wrap">
            <table class="table" aria-label="Campaigns">
              <thead>
                <tr>
                  <th>Started</th>
                  <th>Due</th>
                  <th>Progress</th>
                  <th>State</th>
                </tr>
              </thead>
              <tbody>
                {list.data.reviews.map((r) => (
                  <tr>
                    <td>
                      <a href={`#/reviews/${encodeURIComponent(r.id)}`}>
                        <Time t={r.createdAt} />
                      </a>
                    </td>
                    <td>
                      <Time t={r.dueAt} />
                    </td>
                    <td>
                      <Progress value={r.total - r.pending} max={r.total} label={`Decisions of the campaign started ${new Date(r.createdAt).toLocaleDateString()}`} />
                      <span class="muted small">
                        {r.total - r.pending} of {r.total} decided
                      </span>
                    </td>
                    <td>{r.closedAt ? <Badge kind="ok">closed</Badge> : new Date(r.dueAt) < new Date() ? <Badge kind="error">overdue</Badge> : <Badge kind="warn">open</Badge>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      ) : null}
    </>
  );
}

export function ReviewPage({ me, id }: { me: Me; id: string }) {
  const items = useAsync((signal) => get<{ items: Item[] }>(`/access-reviews/${encodeURIComponent(id)}/items`, { signal }), [id]);
  const admin = can(me, 'access:review');
  const campaign = useAsync(async (signal) => (admin ? (await get<{ reviews: Review[] }>('/access-reviews', { signal })).reviews.find((r) => r.id === id) : undefined), [id, admin]);
  const remind = useAction(async () => {
    const r = await post<{ reviewers: number; reminded: number }>(`/access-reviews/${encodeURIComponent(id)}/remind`);
    notify(r.reviewers === 0 ? 'Nobody to remind: every item has a decision' : `Reminder e-mailed to ${r.reminded} of ${r.reviewers} reviewer(s)`, r.reminded < r.reviewers ? 'error' : 'ok');
  });
  const [all, setAll] = useState(false);
  const decide = useAction(async (it: Item, decision: 'confirm' | 'revoke') => {
    await post(`/access-reviews/${encodeURIComponent(id)}/items/${encodeURIComponent(it.id)}`, { decision });
    notify(decision === 'revoke' ? `Access of ${it.username} revoked` : `Access of ${it.username} confirmed`);
    items.reload();
  });
  const shown = (items.data?.items ?? []).filter((i) => all || i.decision === null);
  const pending = (items.data?.items ?? []).filter((i) => i.decision === null).length;
  return (
    <>
      <PageHeader
        title="Access review"
        back={{ href: '#/reviews', label: 'Access reviews' }}
        description="Confirm what is still needed; revoke the rest. Idle accounts are flagged."
        actions={
          admin && campaign.data && !campaign.data.closedAt ? (
            <Button busy={remind.busy} onClick={() => void remind.run()}>
              Remind reviewers
            </Button>
          ) : null
        }
      />
      <ErrorAlert error={items.error ?? decide.error ?? remind.error} />
      {items.loading && !items.data ? <Loading /> : null}
      {items.data ? (
        <Card
          class="flush"
          title={`${pending} decision(s) waiting for you`}
          actions={
            <label class="check">
              <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} /> show decided items
            </label>
          }
        >
          {shown.length === 0 ? (
            <EmptyState icon="check" title={pending === 0 ? 'Nothing left to decide' : 'No item'}>
              {pending === 0 ? 'Every item assigned to you has a decision.' : undefined}
            </EmptyState>
          ) : (
            <div class="table-wrap">
              <table class="table" aria-label="Review items">
                <thead>
                  <tr>
                    <th>User</th>
                    <th>Access</th>
                    <th>Last active</th>
                    <th>Decision</th>
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((it) => (
                    <tr data-user={it.username} data-kind={it.kind}>
                      <td>
                        {it.username} {it.idle ? <Badge kind="warn">idle</Badge> : null}
                      </td>
                      <td>
                        {it.kind === 'membership' ? (
                          <span>
                            {it.role} of workspace {it.workspaceName ? <strong>{it.workspaceName}</strong> : <code>{it.workspaceId}</code>}
                          </span>
                        ) : it.kind === 'role' ? (
                          <span>appliance role {it.role}</span>
                        ) : (
                          <span>API token “{it.tokenName}”</span>
                        )}
                      </td>
                      <td>
                        <Time t={it.lastSeenAt} />
                      </td>
                      <td>
                        {it.decision ? <Badge kind={it.decision === 'confirm' ? 'ok' : 'error'}>{it.decision}</Badge> : <span class="muted">pending</span>}
                        {it.decidedByName ? <span class="muted small"> by {it.decidedByName}</span> : null}
                      </td>
                      <td class="actions">
                        {it.decision === null && it.self ? <span class="muted small">Your own access: another reviewer decides it</span> : null}
                        {it.decision === null && !it.self ? (
                          <>
                            <Button small onClick={() => void decide.run(it, 'confirm')}>
                              Confirm
                            </Button>
                            <Button small variant="danger" onClick={() => void decide.run(it, 'revoke')}>
                              Revoke
                            </Button>
                          </>
                        ) : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      ) : null}
      {items.data && pending > 0 ? <Alert kind="info">Undecided items are reminded by e-mail before the due date (weekly); an IT admin can also remind the reviewers now, at most once an hour.</Alert> : null}
    </>
  );
}
