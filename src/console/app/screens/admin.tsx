import { useState } from 'preact/hooks';
import { ApiError, get, post, put, url } from '../api.js';
import { can, type Me, type User } from '../session.js';
import { Alert, Badge, Button, Card, EmptyState, ErrorAlert, FormDialog, Icon, Loading, PageHeader, SelectField, TextField, Time, notify, useAction, useAsync } from '../ui.js';
import { mfaLabel } from './account.js';

export { ReviewsPage, ReviewPage } from './reviews.js';
export { KeysPage } from './keys.js';
export { SettingsPage } from './settings.js';

const ROLES = ['member', 'admin', 'backup-operator', 'auditor', 'records-manager'] as const;
const ROLE_TEXT: Record<string, string> = {
  member: 'Member — works with documents in their workspaces',
  admin: 'IT admin — users, keys and settings; no access to document content',
  'backup-operator': 'Backup operator — targets, backups, restores',
  auditor: 'Auditor — reads the audit trail and reports',
  'records-manager': 'Records manager — retention policies and legal holds (a second one approves changes); no access to document content',
};

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
  const s = useAsync((signal) => (can(me, 'settings:manage') ? get<{ sections: { auth?: { mfa?: { requiredRoles?: string[] } } } }>('/settings', { signal }) : Promise.resolve(undefined)), []);
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
  const [link, setLink] = useState<Shown | undefined>();
  const [filter, setFilter] = useState('');
  const invite = useAction(async () => {
    const to = email.trim();
    const r = await post<Invited>('/users', { username: username.trim(), email: to, role });
    setInviting(false);
    setUsername('');
    setEmail('');
    setRole('member');
    // mailed: the link went to the person only; it is never shown (nor kept) here
    if (r.mailed || !r.enrolUrl) setLink({ kind: 'mailed', username: r.user.username, email: to, expiresAt: r.expiresAt });
    else setLink({ kind: 'link', username: r.user.username, enrolUrl: r.enrolUrl, expiresAt: r.expiresAt });
    list.reload();
  });
  const taken = invite.error instanceof ApiError && invite.error.code === 'USERNAME_TAKEN';
  const reinvite = useAction(async (u: User) => {
    const r = await post<{ enrolUrl?: string; expiresAt: string; mailed: boolean }>(`/users/${encodeURIComponent(u.id)}/invite`);
    if (r.mailed || !r.enrolUrl) setLink({ kind: 'mailed', username: u.username, email: '', expiresAt: r.expiresAt });
    else setLink({ kind: 'link', username: u.username, enrolUrl: r.enrolUrl, expiresAt: r.expiresAt });
  });
  const setState = useAction(async (u: User, enable: boolean) => {
    await post(`/users/${encodeURIComponent(u.id)}/${enable ? 'enable' : 'disable'}`);
    notify(`${u.username} ${enable ? 'enabled' : 'disabled; their sessions were ended'}`);
    list.reload();
  });
  const required = useRequiredRoles(me);
  const setRoleOf = useAction(async (u: User, r: string) => {
    // said before the change: a role that needs a second factor waits until the person has one
    const waits = !u.mfaMethod && required.includes(r);
    const warn = waits
      ? `${u.username} has no second factor. The role ${r} requires one: it takes effect only once they set up an authenticator app; until then they stay ${u.role}. Their sessions end and their API tokens are revoked now. Continue?`
      : `Changing the role ends ${u.username}'s sessions and revokes their API tokens. Continue?`;
    if (!window.confirm(warn)) return list.reload();
    const res = await put<{ role: string; pendingRole: string | null }>(`/users/${encodeURIComponent(u.id)}/role`, { role: r });
    notify(res.pendingRole ? `${u.username} stays ${res.role} until they set up a second factor; then ${res.pendingRole}` : `${u.username} is now ${res.role}`);
    list.reload();
  });
  const endSessions = useAction(async (u: User) => {
    const r = await post<{ ended: number; tokensRevoked: number }>(`/users/${encodeURIComponent(u.id)}/sessions/end`);
    notify(`${r.ended} session(s) of ${u.username} ended, ${r.tokensRevoked} API token(s) revoked`);
  });
  const reset = useAction(async (u: User) => {
    const r = await post<{ mailed: boolean; resetUrl?: string; expiresAt: string; codeRequired: boolean }>(`/users/${encodeURIComponent(u.id)}/reset`);
    setLink({ kind: 'reset', username: u.username, ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}), expiresAt: r.expiresAt, codeRequired: r.codeRequired });
  });
  const recover = useAction(async (u: User) => {
    if (!window.confirm(`Recover ${u.username}'s account? This is for a person who lost both password and second factor: a second IT admin must approve it, and the owners of their workspaces are alerted.`)) return;
    const r = await post<{ status: string; resetUrl?: string; expiresAt?: string }>(`/users/${encodeURIComponent(u.id)}/recovery`);
    if (r.status === 'requested') notify(`Recovery of ${u.username} requested: a different IT admin must approve it`);
    else setLink({ kind: 'reset', username: u.username, ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}), expiresAt: r.expiresAt!, codeRequired: false });
  });
  const users = (list.data?.users ?? []).filter((u) => !filter || u.username.toLowerCase().includes(filter.toLowerCase()) || u.role.includes(filter.toLowerCase()));
  return (
    <>
      <PageHeader
        title="Users"
        description="People who can sign in to this appliance. Each user chooses their own password from an enrolment link; nobody can set it for them."
        actions={
          manage ? (
            <Button variant="primary" onClick={() => (setLink(undefined), setInviting(true))}>
              Invite a user
            </Button>
          ) : null
        }
      />
      {link?.kind === 'mailed' ? (
        <Alert kind="ok" title={`Invitation e-mailed to ${link.username}`}>
          <div data-testid="invite-mailed">
            <p>
              An enrolment link was sent to {link.email ? <strong>{link.email}</strong> : 'the address on file'}. It works once and expires <Time t={link.expiresAt} />. For safety it is not shown here: only the person who receives the e-mail can use it.
            </p>
            <Button small variant="ghost" onClick={() => setLink(undefined)}>
              Done
            </Button>
          </div>
        </Alert>
      ) : null}
      {link?.kind === 'link' ? (
        <Alert kind="ok" title={`Enrolment link for ${link.username}`}>
          <p>No mail server is configured, so the link is shown here once. Give it to the person through a channel you trust. It works once and expires <Time t={link.expiresAt} />.</p>
          <div class="link-box">
            <input class="input" readOnly value={link.enrolUrl} aria-label="Enrolment link" data-testid="enrol-link" onFocus={(e) => e.currentTarget.select()} />
            <Button small onClick={() => void navigator.clipboard?.writeText(link.enrolUrl).then(() => notify('Link copied'), () => notify('Copy failed: select the link and copy it', 'error'))}>
              Copy
            </Button>
            <Button small variant="ghost" onClick={() => setLink(undefined)}>
              Done
            </Button>
          </div>
        </Alert>
      ) : null}
      {link?.kind === 'reset' ? (
        <Alert kind="ok" title={`Password reset for ${link.username}`}>
          {link.resetUrl ? (
            <>
              <p>
                No mail server is configured: give this link to the person through a channel you trust. It works once and expires <Time t={link.expiresAt} />.
                {link.codeRequired ? ' It works only with a code from their own authenticator app, so it is of no use to anyone else.' : ' It replaces their second factor.'}
              </p>
              <input class="input" readOnly value={link.resetUrl} aria-label="Reset link" data-testid="reset-link" onFocus={(e) => e.currentTarget.select()} />
            </>
          ) : (
            <p>The reset link was e-mailed to the person. It works once and expires <Time t={link.expiresAt} />.</p>
          )}
          <Button small variant="ghost" onClick={() => setLink(undefined)}>
            Done
          </Button>
        </Alert>
      ) : null}
      <ErrorAlert error={list.error ?? reinvite.error ?? setState.error ?? setRoleOf.error ?? endSessions.error ?? reset.error ?? recover.error} />
      <Card class="flush">
        <div class="toolbar">
          <div class="search">
            <Icon name="search" />
            <label class="sr-only" for="user-filter">
              Filter users
            </label>
            <input id="user-filter" class="input" type="search" placeholder="Filter by name or role" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
          </div>
          <span class="spacer" />
          <span class="muted small">{list.data ? `${list.data.users.length} user(s)` : ''}</span>
        </div>
        {list.loading && !list.data ? <Loading /> : null}
        {list.data && users.length === 0 ? <EmptyState icon="users" title={filter ? 'No user matches' : 'No users yet'} /> : null}
        {users.length ? (
          <div class="table-wrap">
            <table class="table" aria-label="Users">
              <thead>
                <tr>
                  <th>User</th>
                  <th>Role</th>
                  <th>State</th>
                  <th>Second factor</th>
                  <th>Last sign-in</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => (
                  <tr data-user={u.username}>
                    <td>
                      {u.username} {u.id === me.id ? <Badge kind="accent">you</Badge> : null}
                    </td>
                    <td>
                      {manage && u.id !== me.id ? (
                        <select class="input" aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => void setRoleOf.run(u, e.currentTarget.value)}>
                          {ROLES.map((r) => (
                            <option value={r}>{r}</option>
                          ))}
                        </select>
                      ) : (
                        <Badge>{u.role}</Badge>
                      )}
                      {u.pendingRole ? <Badge kind="warn">{`${u.pendingRole} once a second factor is set up`}</Badge> : null}
                    </td>
                    <td>
                      <Badge kind={u.state === 'active' ? 'ok' : u.state === 'invited' ? 'warn' : 'error'}>{u.state}</Badge>
                    </td>
                    <td>{u.mfaMethod ? mfaLabel(u.mfaMethod) : <span class="muted">none</span>}</td>
                    <td>
                      <Time t={u.lastLoginAt} />
                    </td>
                    <td class="actions">
                      {manage ? (
                        <a class="btn btn-secondary btn-sm" data-testid="export-user" href={url(`/users/${encodeURIComponent(u.id)}/export`)} download={`coffre-person-${u.id}.zip`} title="Everything held about this person, as a zip of JSON and CSV (recorded in the audit trail)">
                          Export data
                        </a>
                      ) : null}
                      {manage && u.id !== me.id ? (
                        <>
                          {u.state === 'invited' ? (
                            <Button small onClick={() => void reinvite.run(u)}>
                              New link
                            </Button>
                          ) : null}
                          {u.state === 'active' ? (
                            <>
                              <Button small onClick={() => void endSessions.run(u)}>
                                End sessions
                              </Button>
                              <Button small onClick={() => void reset.run(u)}>
                                Reset password
                              </Button>
                              <Button small variant="ghost" onClick={() => void recover.run(u)}>
                                Recover account
                              </Button>
                            </>
                          ) : null}
                          {u.state === 'disabled' ? (
                            <Button small onClick={() => void setState.run(u, true)}>
                              Enable
                            </Button>
                          ) : (
                            <Button small variant="danger" onClick={() => void setState.run(u, false)}>
                              Disable
                            </Button>
                          )}
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
      <FormDialog
        open={inviting}
        title="Invite a user"
        id="invite"
        class="stack"
        submitLabel="Invite"
        action={invite}
        ready={!!username.trim() && !!email.trim()}
        onClose={() => setInviting(false)}
        error={taken ? null : undefined}
      >
        <TextField label="User name" value={username} onValue={setUsername} required autoFocus autoCapitalize="none" spellcheck={false} error={taken ? 'This user name is taken.' : undefined} />
        <TextField label="E-mail address" type="email" value={email} onValue={setEmail} required hint="Stored encrypted. Used for the invitation, reset links and security notices." />
        <SelectField label="Role" value={role} onValue={setRole} options={ROLES.map((r) => ({ value: r, label: ROLE_TEXT[r] ?? r }))} />
      </FormDialog>
    </>
  );
}

function MfaPolicyNote({ required }: { required: readonly string[] }) {
  const relaxed = ROLES.filter((r) => !required.includes(r));
  return (
    <>
      {relaxed.length ? (
        <Alert kind="warn" title="A second factor is not required for every role">
          <span data-testid="mfa-relaxed">
            Not required for: {relaxed.join(', ')}. Anyone who learns the password of such an account signs in with it alone. This was relaxed in the configuration (<code>auth.mfa.requiredRoles</code>).
          </span>
        </Alert>
      ) : null}
      <p class="muted small">
        A second factor is required for the roles listed in <code>auth.mfa.requiredRoles</code> (by default every role). Users of these roles set up an authenticator app when they enrol.
      </p>
    </>
  );
}
