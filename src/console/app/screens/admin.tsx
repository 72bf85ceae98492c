import { useState } from 'preact/hooks';
import { ApiError, get, post, put, url } from '../api.js';
import { can, type Me, type User } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  FormDialog,
  Icon,
  Loading,
  PageHeader,
  SelectField,
  TextField,
  Time,
  confirmAction,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { LANGUAGES, language, t } from '../i18n/index.js';
import { roleLabel } from '../labels.js';
import { mfaLabel } from './account.js';
import { EraseDialog } from './erase.js';

export { ReviewsPage, ReviewPage } from './reviews.js';
export { KeysPage } from './keys.js';
export { SettingsPage } from './settings.js';

const ROLES = ['member', 'admin', 'backup-operator', 'auditor', 'records-manager'] as const;
const roleText = (r: (typeof ROLES)[number]): string => t(`admin.roleText.${r}`);
const stateLabel = (s: string): string =>
  s === 'active' || s === 'invited' || s === 'disabled'
    ? t(`admin.states.${s}`)
    : s === 'erased'
      ? t('privacy.erased')
      : s;

/** the invitation's answer: the link itself only when no mail server is configured */
interface Invited {
  user: User;
  enrolUrl?: string;
  expiresAt: string;
  mailed: boolean;
}
type Shown =
  | { kind: 'link'; username: string; enrolUrl: string; expiresAt: string }
  | { kind: 'mailed'; username: string; email: string; expiresAt: string }
  | { kind: 'reset'; username: string; resetUrl?: string; expiresAt: string; codeRequired: boolean };

/** auth.mfa.requiredRoles, from the settings view (admins); every role when it cannot be read */
function useRequiredRoles(me: Me): readonly string[] {
  const s = useAsync(
    (signal) =>
      can(me, 'settings:manage')
        ? get<{ sections: { auth?: { mfa?: { requiredRoles?: string[] } } } }>('/settings', { signal })
        : Promise.resolve(undefined),
    [],
  );
  return s.data?.sections.auth?.mfa?.requiredRoles ?? ROLES;
}

/** Users (src/auth): invite, roles, disable/enable, end sessions, new enrolment links. */
export function UsersPage({ me }: { me: Me }) {
  const list = useAsync((signal) => get<{ users: User[] }>('/users', { signal }), []);
  const manage = can(me, 'users:manage');
  const [inviting, setInviting] = useState(false);
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<string>('member');
  const [lang, setLang] = useState<string>(language());
  const [link, setLink] = useState<Shown | undefined>();
  const [filter, setFilter] = useState('');
  const [erasing, setErasing] = useState<User | undefined>();
  const invite = useAction(async () => {
    const to = email.trim();
    const r = await post<Invited>('/users', { username: username.trim(), email: to, role, language: lang });
    setInviting(false);
    setUsername('');
    setEmail('');
    setRole('member');
    // mailed: the link went to the person only; it is never shown (nor kept) here
    if (r.mailed || !r.enrolUrl)
      setLink({ kind: 'mailed', username: r.user.username, email: to, expiresAt: r.expiresAt });
    else setLink({ kind: 'link', username: r.user.username, enrolUrl: r.enrolUrl, expiresAt: r.expiresAt });
    list.reload();
  });
  const taken = invite.error instanceof ApiError && invite.error.code === 'USERNAME_TAKEN';
  const reinvite = useAction(async (u: User) => {
    const r = await post<{ enrolUrl?: string; expiresAt: string; mailed: boolean }>(
      `/users/${encodeURIComponent(u.id)}/invite`,
    );
    if (r.mailed || !r.enrolUrl) setLink({ kind: 'mailed', username: u.username, email: '', expiresAt: r.expiresAt });
    else setLink({ kind: 'link', username: u.username, enrolUrl: r.enrolUrl, expiresAt: r.expiresAt });
  });
  const setState = useAction(async (u: User, enable: boolean) => {
    if (!enable) {
      const ok = await confirmAction({
        title: t('admin.disable.title', { username: u.username }),
        body: <p>{t('admin.disable.body', { username: u.username })}</p>,
        confirmLabel: t('admin.disable.confirm'),
        danger: true,
      });
      if (!ok) return;
    }
    await post(`/users/${encodeURIComponent(u.id)}/${enable ? 'enable' : 'disable'}`);
    notify(enable ? t('admin.enabled', { username: u.username }) : t('admin.disabled', { username: u.username }));
    list.reload();
  });
  const required = useRequiredRoles(me);
  const setRoleOf = useAction(async (u: User, r: string) => {
    // said before the change: a role that needs a second factor waits until the person has one
    const waits = !u.mfaMethod && required.includes(r);
    const names = { username: u.username, role: roleLabel(r), current: roleLabel(u.role) };
    const ok = await confirmAction({
      title: t('admin.role.title', names),
      body: (
        <>
          {waits ? <Alert kind="warn">{t('admin.role.noFactor', names)}</Alert> : null}
          <p>{t('admin.role.body', names)}</p>
        </>
      ),
      confirmLabel: t('admin.role.confirm', names),
      danger: true,
    });
    if (!ok) return list.reload();
    const res = await put<{ role: string; pendingRole: string | null }>(`/users/${encodeURIComponent(u.id)}/role`, {
      role: r,
    });
    notify(
      res.pendingRole
        ? t('admin.role.pending', {
            username: u.username,
            role: roleLabel(res.role),
            pending: roleLabel(res.pendingRole),
          })
        : t('admin.role.done', { username: u.username, role: roleLabel(res.role) }),
    );
    list.reload();
  });
  const endSessions = useAction(async (u: User) => {
    const ok = await confirmAction({
      title: t('admin.end.title', { username: u.username }),
      body: <p>{t('admin.end.body', { username: u.username })}</p>,
      confirmLabel: t('admin.end.confirm'),
      danger: true,
    });
    if (!ok) return;
    const r = await post<{ ended: number; tokensRevoked: number }>(`/users/${encodeURIComponent(u.id)}/sessions/end`);
    notify(
      t('admin.end.done', {
        username: u.username,
        sessions: t('admin.end.sessions', { count: r.ended }),
        tokens: t('admin.end.tokens', { count: r.tokensRevoked }),
      }),
    );
  });
  const reset = useAction(async (u: User) => {
    const r = await post<{ mailed: boolean; resetUrl?: string; expiresAt: string; codeRequired: boolean }>(
      `/users/${encodeURIComponent(u.id)}/reset`,
    );
    setLink({
      kind: 'reset',
      username: u.username,
      ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
      expiresAt: r.expiresAt,
      codeRequired: r.codeRequired,
    });
  });
  const recover = useAction(async (u: User) => {
    const ok = await confirmAction({
      title: t('admin.recover.title', { username: u.username }),
      body: <p>{t('admin.recover.body', { username: u.username })}</p>,
      confirmLabel: t('admin.recover.confirm'),
    });
    if (!ok) return;
    const r = await post<{ status: string; resetUrl?: string; expiresAt?: string }>(
      `/users/${encodeURIComponent(u.id)}/recovery`,
    );
    if (r.status === 'requested') notify(t('admin.recover.requested', { username: u.username }));
    else
      setLink({
        kind: 'reset',
        username: u.username,
        ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
        expiresAt: r.expiresAt!,
        codeRequired: false,
      });
  });
  const users = (list.data?.users ?? []).filter(
    (u) => !filter || u.username.toLowerCase().includes(filter.toLowerCase()) || u.role.includes(filter.toLowerCase()),
  );
  return (
    <>
      <PageHeader
        title={t('admin.title')}
        description={t('admin.description')}
        actions={
          manage ? (
            <Button variant="primary" onClick={() => (setLink(undefined), setInviting(true))}>
              {t('admin.invite.open')}
            </Button>
          ) : null
        }
      />
      {link?.kind === 'mailed' ? (
        <Alert kind="ok" title={t('admin.mailed.title', { username: link.username })}>
          <div data-testid="invite-mailed">
            <p>
              {link.email ? t('admin.mailed.to', { email: link.email }) : t('admin.mailed.onFile')} {t('admin.expires')}{' '}
              <Time t={link.expiresAt} />. {t('admin.mailed.notShown')}
            </p>
            <Button small variant="ghost" onClick={() => setLink(undefined)}>
              {t('admin.done')}
            </Button>
          </div>
        </Alert>
      ) : null}
      {link?.kind === 'link' ? (
        <Alert kind="ok" title={t('admin.link.title', { username: link.username })}>
          <p>
            {t('admin.link.text')} {t('admin.expires')} <Time t={link.expiresAt} />.
          </p>
          <div class="link-box">
            <input
              class="input"
              readOnly
              value={link.enrolUrl}
              aria-label={t('admin.link.label')}
              data-testid="enrol-link"
              onFocus={(e) => e.currentTarget.select()}
            />
            <Button
              small
              onClick={() =>
                void navigator.clipboard?.writeText(link.enrolUrl).then(
                  () => notify(t('admin.link.copied')),
                  () => notify(t('admin.link.copyFailed'), 'error'),
                )
              }
            >
              {t('admin.link.copy')}
            </Button>
            <Button small variant="ghost" onClick={() => setLink(undefined)}>
              {t('admin.done')}
            </Button>
          </div>
        </Alert>
      ) : null}
      {link?.kind === 'reset' ? (
        <Alert kind="ok" title={t('admin.reset.title', { username: link.username })}>
          {link.resetUrl ? (
            <>
              <p>
                {t('admin.reset.noMail')} {t('admin.expires')} <Time t={link.expiresAt} />.{' '}
                {link.codeRequired ? t('admin.reset.codeRequired') : t('admin.reset.replaces')}
              </p>
              <input
                class="input"
                readOnly
                value={link.resetUrl}
                aria-label={t('admin.reset.label')}
                data-testid="reset-link"
                onFocus={(e) => e.currentTarget.select()}
              />
            </>
          ) : (
            <p>
              {t('admin.reset.mailed')} {t('admin.expires')} <Time t={link.expiresAt} />.
            </p>
          )}
          <Button small variant="ghost" onClick={() => setLink(undefined)}>
            {t('admin.done')}
          </Button>
        </Alert>
      ) : null}
      <ErrorAlert
        error={
          list.error ??
          reinvite.error ??
          setState.error ??
          setRoleOf.error ??
          endSessions.error ??
          reset.error ??
          recover.error
        }
      />
      <Card class="flush">
        <div class="toolbar">
          <div class="search">
            <Icon name="search" />
            <label class="sr-only" for="user-filter">
              {t('admin.filter.label')}
            </label>
            <input
              id="user-filter"
              class="input"
              type="search"
              placeholder={t('admin.filter.placeholder')}
              value={filter}
              onInput={(e) => setFilter(e.currentTarget.value)}
            />
          </div>
          <span class="spacer" />
          <span class="muted small">{list.data ? t('admin.count', { count: list.data.users.length }) : ''}</span>
        </div>
        {list.loading && !list.data ? <Loading /> : null}
        {list.data && users.length === 0 ? (
          <EmptyState icon="users" title={filter ? t('admin.noMatch') : t('admin.none')} />
        ) : null}
        {users.length ? (
          <div class="table-wrap">
            <table class="table" aria-label={t('admin.title')}>
              <thead>
                <tr>
                  <th>{t('admin.col.user')}</th>
                  <th>{t('admin.col.role')}</th>
                  <th>{t('admin.col.state')}</th>
                  <th>{t('admin.col.factor')}</th>
                  <th>{t('admin.col.lastSignIn')}</th>
                  <th class="actions">
                    <span class="sr-only">{t('common.actions')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => (
                  <tr data-user={u.username}>
                    <td>
                      {u.state === 'erased' ? t('privacy.erasedUser') : u.username}{' '}
                      {u.id === me.id ? <Badge kind="accent">{t('admin.you')}</Badge> : null}
                    </td>
                    <td>
                      {manage && u.id !== me.id ? (
                        <select
                          class="input"
                          aria-label={t('admin.roleOf', { username: u.username })}
                          value={u.role}
                          onChange={(e) => void setRoleOf.run(u, e.currentTarget.value)}
                        >
                          {ROLES.map((r) => (
                            <option value={r}>{roleLabel(r)}</option>
                          ))}
                        </select>
                      ) : (
                        <Badge>{roleLabel(u.role)}</Badge>
                      )}
                      {u.pendingRole ? (
                        <Badge kind="warn">{t('admin.pendingRole', { role: roleLabel(u.pendingRole) })}</Badge>
                      ) : null}
                    </td>
                    <td>
                      <Badge
                        kind={
                          u.state === 'active'
                            ? 'ok'
                            : u.state === 'invited'
                              ? 'warn'
                              : u.state === 'erased'
                                ? 'neutral'
                                : 'error'
                        }
                      >
                        {stateLabel(u.state)}
                      </Badge>
                    </td>
                    <td>{u.mfaMethod ? mfaLabel(u.mfaMethod) : <span class="muted">{t('account.mfa.none')}</span>}</td>
                    <td>
                      <Time t={u.lastLoginAt} />
                    </td>
                    <td class="actions">
                      {manage ? (
                        <a
                          class="btn btn-secondary btn-sm"
                          data-testid="export-user"
                          href={url(`/users/${encodeURIComponent(u.id)}/export`)}
                          download={`coffre-person-${u.id}.zip`}
                          title={t('admin.export.title')}
                        >
                          {t('admin.export.label')}
                        </a>
                      ) : null}
                      {manage && u.id !== me.id && u.state !== 'erased' ? (
                        <>
                          {u.state === 'invited' ? (
                            <Button small onClick={() => void reinvite.run(u)}>
                              {t('admin.actions.newLink')}
                            </Button>
                          ) : null}
                          {u.state === 'active' ? (
                            <>
                              <Button small onClick={() => void endSessions.run(u)}>
                                {t('admin.actions.endSessions')}
                              </Button>
                              <Button small onClick={() => void reset.run(u)}>
                                {t('admin.actions.reset')}
                              </Button>
                              <Button small variant="ghost" onClick={() => void recover.run(u)}>
                                {t('admin.actions.recover')}
                              </Button>
                            </>
                          ) : null}
                          {u.state === 'disabled' ? (
                            <Button small onClick={() => void setState.run(u, true)}>
                              {t('admin.actions.enable')}
                            </Button>
                          ) : (
                            <Button small variant="danger" onClick={() => void setState.run(u, false)}>
                              {t('admin.actions.disable')}
                            </Button>
                          )}
                          <Button small variant="danger" data-testid="erase-user" onClick={() => setErasing(u)}>
                            {t('privacy.erase.button')}
                          </Button>
                        </>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </Card>
      <MfaPolicyNote required={required} />
      <p class="muted small">
        <a href={url('/privacy/ropa')} target="_blank" rel="noopener" data-testid="ropa">
          {t('privacy.ropa')}
        </a>
      </p>
      <EraseDialog
        user={erasing}
        users={list.data?.users ?? []}
        onClose={() => setErasing(undefined)}
        onDone={() => list.reload()}
      />
      <FormDialog
        open={inviting}
        title={t('admin.invite.open')}
        id="invite"
        class="stack"
        submitLabel={t('admin.invite.submit')}
        action={invite}
        ready={!!username.trim() && !!email.trim()}
        onClose={() => setInviting(false)}
        error={taken ? null : undefined}
      >
        <TextField
          label={t('signin.username')}
          value={username}
          onValue={setUsername}
          required
          autoFocus
          autoCapitalize="none"
          spellcheck={false}
          error={taken ? t('admin.invite.taken') : undefined}
        />
        <TextField
          label={t('admin.invite.email')}
          type="email"
          value={email}
          onValue={setEmail}
          required
          hint={t('admin.invite.emailHint')}
        />
        <SelectField
          label={t('admin.col.role')}
          value={role}
          onValue={setRole}
          options={ROLES.map((r) => ({ value: r, label: roleText(r) }))}
        />
        <SelectField
          label={t('admin.invite.language')}
          hint={t('admin.invite.languageHint')}
          value={lang}
          onValue={setLang}
          options={LANGUAGES.map((l) => ({ value: l, label: t(`account.languages.${l}`) }))}
        />
      </FormDialog>
    </>
  );
}

function MfaPolicyNote({ required }: { required: readonly string[] }) {
  const relaxed = ROLES.filter((r) => !required.includes(r));
  return (
    <>
      {relaxed.length ? (
        <Alert kind="warn" title={t('admin.mfaPolicy.relaxedTitle')}>
          <span data-testid="mfa-relaxed">
            {t('admin.mfaPolicy.relaxed', { roles: relaxed.map(roleLabel).join(', ') })} (
            <code>auth.mfa.requiredRoles</code>).
          </span>
        </Alert>
      ) : null}
      <p class="muted small">
        {t('admin.mfaPolicy.note')} (<code>auth.mfa.requiredRoles</code>)
      </p>
    </>
  );
}
