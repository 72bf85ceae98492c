import { useState } from 'preact/hooks';
import { client, data } from '../client.js';
import { can, type Me, type User } from '../session.js';
import { Alert, Button, Time, confirmAction, notify, useAction, useAsync } from '../ui.js';
import { t } from '../i18n/index.js';
import { roleLabel } from '../labels.js';

/**
 * What an IT admin does to one account, shared by the users list and a user's own page: every
 * consequential step goes through a confirmation dialog that says what happens to the person.
 */
export const ROLES = ['member', 'admin', 'backup-operator', 'auditor', 'records-manager'] as const;

export const stateLabel = (s: string): string =>
  s === 'active' || s === 'invited' || s === 'disabled'
    ? t(`admin.states.${s}`)
    : s === 'erased'
      ? t('privacy.erased')
      : s;
export const stateKind = (s: string) =>
  s === 'active' ? 'ok' : s === 'invited' ? 'warn' : s === 'erased' ? 'neutral' : 'error';

/** a link to show once (no mail server), or a note that it was e-mailed */
export type Shown =
  | { kind: 'link'; username: string; enrolUrl: string; expiresAt: string }
  | { kind: 'mailed'; username: string; email: string; expiresAt: string }
  | { kind: 'reset'; username: string; resetUrl?: string; expiresAt: string; codeRequired: boolean };

/** auth.mfa.requiredRoles, from the settings view (admins); every role when it cannot be read */
export function useRequiredRoles(me: Me): readonly string[] {
  const s = useAsync(
    (signal) =>
      can(me, 'settings:manage') ? data(client.GET('/api/v1/settings', { signal })) : Promise.resolve(undefined),
    [],
  );
  const auth = s.data?.sections.auth as { mfa?: { requiredRoles?: string[] } } | undefined;
  return auth?.mfa?.requiredRoles ?? ROLES;
}

const of = (u: User) => ({ params: { path: { id: u.id } } });

/** the account actions; `changed` reloads whatever shows the account */
export function useUserActions(me: Me, changed: () => void) {
  const [link, setLink] = useState<Shown | undefined>();
  const required = useRequiredRoles(me);
  const reinvite = useAction(async (u: User) => {
    const r = await data(client.POST('/api/v1/users/{id}/invite', of(u)));
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
    await data(
      enable ? client.POST('/api/v1/users/{id}/enable', of(u)) : client.POST('/api/v1/users/{id}/disable', of(u)),
    );
    notify(enable ? t('admin.enabled', { username: u.username }) : t('admin.disabled', { username: u.username }));
    changed();
  });
  const setRole = useAction(async (u: User, r: string) => {
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
    if (!ok) return changed();
    const res = await data(client.PUT('/api/v1/users/{id}/role', { ...of(u), body: { role: r } }));
    notify(
      res.pendingRole
        ? t('admin.role.pending', {
            username: u.username,
            role: roleLabel(res.role),
            pending: roleLabel(res.pendingRole),
          })
        : t('admin.role.done', { username: u.username, role: roleLabel(res.role) }),
    );
    changed();
  });
  const endSessions = useAction(async (u: User) => {
    const ok = await confirmAction({
      title: t('admin.end.title', { username: u.username }),
      body: <p>{t('admin.end.body', { username: u.username })}</p>,
      confirmLabel: t('admin.end.confirm'),
      danger: true,
    });
    if (!ok) return;
    const r = await data(client.POST('/api/v1/users/{id}/sessions/end', of(u)));
    notify(
      t('admin.end.done', {
        username: u.username,
        sessions: t('admin.end.sessions', { count: r.ended }),
        tokens: t('admin.end.tokens', { count: r.tokensRevoked }),
      }),
    );
    changed();
  });
  const reset = useAction(async (u: User) => {
    const r = await data(client.POST('/api/v1/users/{id}/reset', of(u)));
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
    const r = await data(client.POST('/api/v1/users/{id}/recovery', of(u)));
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
  const error = reinvite.error ?? setState.error ?? setRole.error ?? endSessions.error ?? reset.error ?? recover.error;
  return { link, setLink, required, reinvite, setState, setRole, endSessions, reset, recover, error };
}

/** the link or note an action left to show, with a way to dismiss it */
export function ShownLink({ link, onDone }: { link: Shown | undefined; onDone: () => void }) {
  if (!link) return null;
  if (link.kind === 'mailed')
    return (
      <Alert kind="ok" title={t('admin.mailed.title', { username: link.username })}>
        <div data-testid="invite-mailed">
          <p>
            {link.email ? t('admin.mailed.to', { email: link.email }) : t('admin.mailed.onFile')} {t('admin.expires')}{' '}
            <Time t={link.expiresAt} />. {t('admin.mailed.notShown')}
          </p>
          <Button small variant="ghost" onClick={onDone}>
            {t('admin.done')}
          </Button>
        </div>
      </Alert>
    );
  if (link.kind === 'link')
    return (
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
          <Button small variant="ghost" onClick={onDone}>
            {t('admin.done')}
          </Button>
        </div>
      </Alert>
    );
  return (
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
      <Button small variant="ghost" onClick={onDone}>
        {t('admin.done')}
      </Button>
    </Alert>
  );
}

/** the buttons of one account's actions (the person's own account has none) */
export function AccountButtons({
  u,
  acts,
  recover = true,
}: {
  u: User;
  acts: ReturnType<typeof useUserActions>;
  recover?: boolean;
}) {
  return (
    <>
      {u.state === 'invited' ? (
        <Button small onClick={() => void acts.reinvite.run(u)}>
          {t('admin.actions.newLink')}
        </Button>
      ) : null}
      {u.state === 'active' ? (
        <>
          <Button small onClick={() => void acts.endSessions.run(u)}>
            {t('admin.actions.endSessions')}
          </Button>
          <Button small onClick={() => void acts.reset.run(u)}>
            {t('admin.actions.reset')}
          </Button>
          {recover ? (
            <Button small variant="ghost" onClick={() => void acts.recover.run(u)}>
              {t('admin.actions.recover')}
            </Button>
          ) : null}
        </>
      ) : null}
      {u.state === 'disabled' ? (
        <Button small onClick={() => void acts.setState.run(u, true)}>
          {t('admin.actions.enable')}
        </Button>
      ) : (
        <Button small variant="danger" onClick={() => void acts.setState.run(u, false)}>
          {t('admin.actions.disable')}
        </Button>
      )}
    </>
  );
}
