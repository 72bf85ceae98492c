import { useState } from 'preact/hooks';
import { get, post, url } from '../api.js';
import { navigate } from '../router.js';
import { can, type Me } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Loading,
  PageHeader,
  Progress,
  Time,
  confirmAction,
  notify,
  useAction,
  useAsync,
  when,
} from '../ui.js';
import { t } from '../i18n/index.js';
import { roleLabel } from '../labels.js';

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
    notify(t('reviews.started', { count: r.items }));
    navigate(`/reviews/${r.id}`);
  });
  return (
    <>
      <PageHeader
        title={t('reviews.title')}
        description={t('reviews.description')}
        actions={
          admin ? (
            <>
              <a
                class="btn btn-secondary"
                href={url('/access-reviews/export', { format: 'csv' })}
                download="coffre-access.csv"
              >
                {t('reviews.exportCsv')}
              </a>
              <a
                class="btn btn-secondary"
                href={url('/access-reviews/export', { format: 'json' })}
                download="coffre-access.json"
              >
                {t('reviews.exportJson')}
              </a>
              {open ? (
                <a class="btn btn-primary" href={`#/reviews/${encodeURIComponent(open.id)}`}>
                  {t('reviews.openCurrent')}
                </a>
              ) : (
                <Button variant="primary" busy={start.busy} disabled={!list.data} onClick={() => void start.run()}>
                  {t('reviews.start')}
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
          <EmptyState icon="list" title={t('reviews.none')}>
            {admin ? t('reviews.noneAdmin') : t('reviews.noneOwner')}
          </EmptyState>
        </Card>
      ) : null}
      {list.data && list.data.reviews.length ? (
        <Card class="flush">
          <div class="table-wrap">
            <table class="table" aria-label={t('reviews.campaigns')}>
              <thead>
                <tr>
                  <th>{t('reviews.col.started')}</th>
                  <th>{t('reviews.col.due')}</th>
                  <th>{t('reviews.col.progress')}</th>
                  <th>{t('reviews.col.state')}</th>
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
                      <Progress
                        value={r.total - r.pending}
                        max={r.total}
                        label={t('reviews.progressLabel', { date: when(r.createdAt) })}
                      />
                      <span class="muted small">
                        {t('reviews.decided', { done: r.total - r.pending, total: r.total })}
                      </span>
                    </td>
                    <td>
                      {r.closedAt ? (
                        <Badge kind="ok">{t('reviews.state.closed')}</Badge>
                      ) : new Date(r.dueAt) < new Date() ? (
                        <Badge kind="error">{t('reviews.state.overdue')}</Badge>
                      ) : (
                        <Badge kind="warn">{t('reviews.state.open')}</Badge>
                      )}
                    </td>
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
  const items = useAsync(
    (signal) => get<{ items: Item[] }>(`/access-reviews/${encodeURIComponent(id)}/items`, { signal }),
    [id],
  );
  const admin = can(me, 'access:review');
  const campaign = useAsync(
    async (signal) =>
      admin
        ? (await get<{ reviews: Review[] }>('/access-reviews', { signal })).reviews.find((r) => r.id === id)
        : undefined,
    [id, admin],
  );
  const remind = useAction(async () => {
    const r = await post<{ reviewers: number; reminded: number }>(`/access-reviews/${encodeURIComponent(id)}/remind`);
    notify(
      r.reviewers === 0 ? t('reviews.nobody') : t('reviews.reminded', { count: r.reviewers, reminded: r.reminded }),
      r.reminded < r.reviewers ? 'error' : 'ok',
    );
  });
  const [all, setAll] = useState(false);
  const decide = useAction(async (it: Item, decision: 'confirm' | 'revoke') => {
    if (decision === 'revoke') {
      const ok = await confirmAction({
        title: t('reviews.revoke.title', { username: it.username }),
        body: <p>{revokeConsequence(it)}</p>,
        confirmLabel: t('reviews.revoke.confirm'),
        danger: true,
      });
      if (!ok) return;
    }
    await post(`/access-reviews/${encodeURIComponent(id)}/items/${encodeURIComponent(it.id)}`, { decision });
    notify(
      decision === 'revoke'
        ? t('reviews.revoked', { username: it.username })
        : t('reviews.confirmed', { username: it.username }),
    );
    items.reload();
  });
  const shown = (items.data?.items ?? []).filter((i) => all || i.decision === null);
  const pending = (items.data?.items ?? []).filter((i) => i.decision === null).length;
  return (
    <>
      <PageHeader
        title={t('reviews.one')}
        back={{ href: '#/reviews', label: t('reviews.title') }}
        description={t('reviews.oneDescription')}
        actions={
          admin && campaign.data && !campaign.data.closedAt ? (
            <Button busy={remind.busy} onClick={() => void remind.run()}>
              {t('reviews.remind')}
            </Button>
          ) : null
        }
      />
      <ErrorAlert error={items.error ?? decide.error ?? remind.error} />
      {items.loading && !items.data ? <Loading /> : null}
      {items.data ? (
        <Card
          class="flush"
          title={t('reviews.waiting', { count: pending })}
          actions={
            <label class="check">
              <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />{' '}
              {t('reviews.showDecided')}
            </label>
          }
        >
          {shown.length === 0 ? (
            <EmptyState icon="check" title={pending === 0 ? t('reviews.nothingLeft') : t('reviews.noItem')}>
              {pending === 0 ? t('reviews.allDecided') : undefined}
            </EmptyState>
          ) : (
            <div class="table-wrap">
              <table class="table" aria-label={t('reviews.items')}>
                <thead>
                  <tr>
                    <th>{t('admin.col.user')}</th>
                    <th>{t('reviews.col.access')}</th>
                    <th>{t('account.sessions.lastActive')}</th>
                    <th>{t('reviews.col.decision')}</th>
                    <th class="actions">
                      <span class="sr-only">{t('common.actions')}</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((it) => (
                    <tr data-user={it.username} data-kind={it.kind}>
                      <td>
                        {it.username} {it.idle ? <Badge kind="warn">{t('reviews.idle')}</Badge> : null}
                      </td>
                      <td>
                        {it.kind === 'membership' ? (
                          <span>
                            {t('reviews.access.membership', { role: it.role ?? '' })}{' '}
                            {it.workspaceName ? <strong>{it.workspaceName}</strong> : <code>{it.workspaceId}</code>}
                          </span>
                        ) : it.kind === 'role' ? (
                          <span>{t('reviews.access.role', { role: roleLabel(it.role ?? '') })}</span>
                        ) : (
                          <span>{t('reviews.access.token', { name: it.tokenName ?? '' })}</span>
                        )}
                      </td>
                      <td>
                        <Time t={it.lastSeenAt} />
                      </td>
                      <td>
                        {it.decision ? (
                          <Badge kind={it.decision === 'confirm' ? 'ok' : 'error'}>
                            {t(`reviews.decision.${it.decision}`)}
                          </Badge>
                        ) : (
                          <span class="muted">{t('reviews.decision.pending')}</span>
                        )}
                        {it.decidedByName ? (
                          <span class="muted small"> {t('reviews.by', { name: it.decidedByName })}</span>
                        ) : null}
                      </td>
                      <td class="actions">
                        {it.decision === null && it.self ? <span class="muted small">{t('reviews.own')}</span> : null}
                        {it.decision === null && !it.self ? (
                          <>
                            <Button small onClick={() => void decide.run(it, 'confirm')}>
                              {t('reviews.confirmBtn')}
                            </Button>
                            <Button small variant="danger" onClick={() => void decide.run(it, 'revoke')}>
                              {t('reviews.revokeBtn')}
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
      {items.data && pending > 0 ? <Alert kind="info">{t('reviews.reminderNote')}</Alert> : null}
    </>
  );
}

/** what revoking this item does, in words */
function revokeConsequence(it: Item): string {
  if (it.kind === 'membership')
    return t('reviews.revoke.membership', {
      username: it.username,
      workspace: it.workspaceName ?? it.workspaceId ?? '',
    });
  if (it.kind === 'token') return t('reviews.revoke.token', { username: it.username, name: it.tokenName ?? '' });
  return it.role === 'member'
    ? t('reviews.revoke.member', { username: it.username })
    : t('reviews.revoke.role', { username: it.username, role: roleLabel(it.role ?? '') });
}
