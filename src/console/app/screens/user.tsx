import { client, data, type Reply } from '../client.js';
import { can, type Me, type User } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Facts,
  Loading,
  PageHeader,
  Time,
  confirmAction,
  type ConfirmRequest,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { t } from '../i18n/index.js';
import { roleLabel } from '../labels.js';
import { SessionsTable, browserOf, mfaLabel, type SessionRow } from './account.js';
import { wsRole } from './docs/common.js';
import { AccountButtons, ROLES, ShownLink, stateKind, stateLabel, useUserActions } from './user-actions.js';

type TokenRow = Reply<'/api/v1/users/{id}/tokens', 'get'>['tokens'][number];

/**
 * One person, for an IT admin (`#/users/:id`): role, state, second factor, live sessions (device,
 * address, last seen), API tokens, and workspaces as the access review shows them: the id and role
 * of each, its name only when the admin is a member of it too. Each action asks first and says
 * what it does to the person.
 */
export function UserPage({ me, id }: { me: Me; id: string }) {
  const manage = can(me, 'users:manage');
  const user = useAsync(
    async (signal) =>
      (await data(client.GET('/api/v1/users', { signal }))).users.find((u) => u.id === id) as User | undefined,
    [id],
  );
  const sessions = useAsync(
    (signal) =>
      manage
        ? data(client.GET('/api/v1/users/{id}/sessions', { params: { path: { id } }, signal }))
        : Promise.resolve({ sessions: [] }),
    [id],
  );
  const tokens = useAsync(
    (signal) => data(client.GET('/api/v1/users/{id}/tokens', { params: { path: { id } }, signal })),
    [id],
  );
  const ws = useAsync(
    (signal) =>
      can(me, 'access:review')
        ? data(client.GET('/api/v1/users/{id}/workspaces', { params: { path: { id } }, signal }))
        : Promise.resolve(undefined),
    [id],
  );
  const reload = () => (user.reload(), sessions.reload(), tokens.reload());
  const acts = useUserActions(me, reload);
  const u = user.data;
  /** asks with the consequence in words, then deletes and says it is done */
  const remove = useAction(
    async (q: ConfirmRequest & { act: () => Promise<unknown>; done: string; after: () => void }) => {
      if (!(await confirmAction({ ...q, danger: true }))) return;
      await q.act();
      notify(q.done);
      q.after();
    },
  );
  const endSession = (s: SessionRow) => {
    const names = { username: u!.username, device: browserOf(s.userAgent), address: s.ip ?? '—' };
    void remove.run({
      title: t('user.sessions.endTitle', names),
      body: <p>{t('user.sessions.endBody', names)}</p>,
      confirmLabel: t('user.sessions.endConfirm'),
      act: () =>
        data(client.DELETE('/api/v1/users/{id}/sessions/{sessionId}', { params: { path: { id, sessionId: s.id } } })),
      done: t('user.sessions.ended', names),
      after: sessions.reload,
    });
  };
  const revoke = (tk: TokenRow) => {
    const names = { username: u!.username, name: tk.name };
    void remove.run({
      title: t('user.tokens.revokeTitle', names),
      body: <p>{t('user.tokens.revokeBody', names)}</p>,
      confirmLabel: t('user.tokens.revokeConfirm'),
      act: () =>
        data(client.DELETE('/api/v1/users/{id}/tokens/{tokenId}', { params: { path: { id, tokenId: tk.id } } })),
      done: t('user.tokens.revoked', names),
      after: tokens.reload,
    });
  };
  const self = u?.id === me.id;
  const live = (tokens.data?.tokens ?? []).filter((x) => !x.revokedAt && Date.parse(x.expiresAt) > Date.now());
  return (
    <>
      <PageHeader
        title={u ? u.username : t('user.title')}
        description={t('user.description')}
        back={{ href: '#/users', label: t('admin.title') }}
      />
      <ShownLink link={acts.link} onDone={() => acts.setLink(undefined)} />
      <ErrorAlert error={user.error ?? sessions.error ?? tokens.error ?? ws.error ?? acts.error ?? remove.error} />
      {user.loading && !u ? <Loading /> : null}
      {user.data === undefined && !user.loading && !user.error ? (
        <EmptyState icon="users" title={t('user.notFound')} />
      ) : null}
      {u ? (
        <>
          <Card title={t('user.account')}>
            <Facts
              items={[
                [t('account.userId'), <code>{u.id}</code>],
                [
                  t('admin.col.role'),
                  <span data-testid="user-role">
                    <Badge>{roleLabel(u.role)}</Badge>{' '}
                    {u.pendingRole ? (
                      <Badge kind="warn">{t('admin.pendingRole', { role: roleLabel(u.pendingRole) })}</Badge>
                    ) : null}
                  </span>,
                ],
                [
                  t('admin.col.state'),
                  <span data-testid="user-state">
                    <Badge kind={stateKind(u.state)}>{stateLabel(u.state)}</Badge>
                  </span>,
                ],
                [
                  t('account.secondFactor'),
                  <span data-testid="user-factor">
                    {u.mfaMethod ? (
                      <Badge kind="ok">{mfaLabel(u.mfaMethod)}</Badge>
                    ) : (
                      <Badge kind="warn">{t('account.mfa.none')}</Badge>
                    )}
                  </span>,
                ],
                [t('admin.col.lastSignIn'), <Time t={u.lastLoginAt} />],
                [t('user.created'), <Time t={u.createdAt} />],
              ]}
            />
            {manage && !self && u.state !== 'erased' ? (
              <div class="row user-actions">
                <label class="sr-only" for="user-role-select">
                  {t('admin.roleOf', { username: u.username })}
                </label>
                <select
                  id="user-role-select"
                  class="input"
                  value={u.role}
                  onChange={(e) => void acts.setRole.run(u, e.currentTarget.value)}
                >
                  {ROLES.map((r) => (
                    <option value={r}>{roleLabel(r)}</option>
                  ))}
                </select>
                <AccountButtons u={u} acts={acts} recover={false} />
              </div>
            ) : null}
          </Card>
          <Card title={t('account.secondFactor')}>
            <p>{u.mfaMethod ? t('user.factor.set', { method: mfaLabel(u.mfaMethod) }) : t('user.factor.none')}</p>
            <p class="muted small">{t('user.factor.noReset')}</p>
            {manage && !self && u.state === 'active' ? (
              <Button small variant="ghost" onClick={() => void acts.recover.run(u)}>
                {t('admin.actions.recover')}
              </Button>
            ) : null}
          </Card>
          <Card title={t('user.workspaces.title')} class="flush">
            {ws.data ? (
              <>
                <p class="muted small pad" data-testid="ws-note">
                  {t('user.workspaces.note', { count: ws.data.memberships.length })}
                </p>
                {ws.data.memberships.length ? (
                  <div class="table-wrap">
                    <table class="table" aria-label={t('user.workspaces.title')}>
                      <thead>
                        <tr>
                          <th>{t('user.workspaces.workspace')}</th>
                          <th>{t('user.workspaces.role')}</th>
                          <th>{t('user.workspaces.since')}</th>
                        </tr>
                      </thead>
                      <tbody>
                        {ws.data.memberships.map((m) => (
                          <tr data-workspace={m.workspaceId}>
                            <td>
                              {m.name ?? (
                                <span class="muted">
                                  {t('user.workspaces.hidden')} <code>{m.workspaceId.slice(0, 8)}</code>
                                </span>
                              )}
                            </td>
                            <td>{wsRole(m.role)}</td>
                            <td>
                              <Time t={m.addedAt} />
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                ) : null}
              </>
            ) : ws.loading ? (
              <Loading />
            ) : null}
          </Card>
          {manage ? (
            <Card title={t('user.sessions.title')} class="flush">
              {sessions.data && sessions.data.sessions.length === 0 ? (
                <p class="muted pad">{t('user.sessions.none')}</p>
              ) : null}
              {sessions.data?.sessions.length ? (
                <SessionsTable
                  sessions={sessions.data.sessions}
                  label={t('user.sessions.title')}
                  action={(s) => (
                    <Button small variant="danger" onClick={() => endSession(s)}>
                      {t('user.sessions.end')}
                    </Button>
                  )}
                />
              ) : null}
            </Card>
          ) : null}
          <Card title={t('user.tokens.title')} class="flush">
            {tokens.data && live.length === 0 ? <p class="muted pad">{t('user.tokens.none')}</p> : null}
            {live.length ? (
              <div class="table-wrap">
                <table class="table" aria-label={t('user.tokens.title')}>
                  <thead>
                    <tr>
                      <th>{t('user.tokens.name')}</th>
                      <th>{t('user.tokens.lastUsed')}</th>
                      <th>{t('account.sessions.expires')}</th>
                      <th class="actions">
                        <span class="sr-only">{t('common.actions')}</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {live.map((tk) => (
                      <tr data-token={tk.id}>
                        <td>{tk.name}</td>
                        <td>
                          <Time t={tk.lastUsedAt} />
                        </td>
                        <td>
                          <Time t={tk.expiresAt} />
                        </td>
                        <td class="actions">
                          {manage ? (
                            <Button small variant="danger" onClick={() => revoke(tk)}>
                              {t('user.tokens.revoke')}
                            </Button>
                          ) : null}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : null}
          </Card>
          {self ? <Alert kind="info">{t('user.self')}</Alert> : null}
        </>
      ) : null}
    </>
  );
}
