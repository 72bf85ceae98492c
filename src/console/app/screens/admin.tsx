import { useState } from 'preact/hooks';
import { ApiError, url } from '../api.js';
import { client, data } from '../client.js';
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
  useAction,
  useAsync,
} from '../ui.js';
import { LANGUAGES, language, t, type Language } from '../i18n/index.js';
import { roleLabel } from '../labels.js';
import { mfaLabel } from './account.js';
import { EraseDialog } from './erase.js';
import { AccountButtons, ROLES, ShownLink, stateKind, stateLabel, useUserActions } from './user-actions.js';

export { ReviewsPage, ReviewPage } from './reviews.js';
export { KeysPage } from './keys.js';
export { SettingsPage } from './settings.js';

const roleText = (r: (typeof ROLES)[number]): string => t(`admin.roleText.${r}`);
/** Users (src/auth): invite, roles, disable/enable, end sessions, new enrolment links. */
export function UsersPage({ me }: { me: Me }) {
  const list = useAsync(
    async (signal) => (await data(client.GET('/api/v1/users', { signal }))) as { users: User[] },
    [],
  );
  const manage = can(me, 'users:manage');
  const [inviting, setInviting] = useState(false);
  const [username, setUsername] = useState('');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<string>('member');
  const [lang, setLang] = useState<string>(language());
  const [filter, setFilter] = useState('');
  const [erasing, setErasing] = useState<User | undefined>();
  const invite = useAction(async () => {
    const to = email.trim();
    const r = await data(
      client.POST('/api/v1/users', {
        body: { username: username.trim(), email: to, role, language: lang as Language },
      }),
    );
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
  const acts = useUserActions(me, () => list.reload());
  const { link, setLink, required } = acts;
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
      <ShownLink link={link} onDone={() => setLink(undefined)} />
      <ErrorAlert error={list.error ?? acts.error} />
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
                      {u.state === 'erased' ? (
                        t('privacy.erasedUser')
                      ) : (
                        <a href={`#/users/${encodeURIComponent(u.id)}`} data-testid="user-page">
                          {u.username}
                        </a>
                      )}{' '}
                      {u.id === me.id ? <Badge kind="accent">{t('admin.you')}</Badge> : null}
                    </td>
                    <td>
                      {manage && u.id !== me.id ? (
                        <select
                          class="input"
                          aria-label={t('admin.roleOf', { username: u.username })}
                          value={u.role}
                          onChange={(e) => void acts.setRole.run(u, e.currentTarget.value)}
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
                      <Badge kind={stateKind(u.state)}>{stateLabel(u.state)}</Badge>
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
                          <AccountButtons u={u} acts={acts} />
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
