import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import type { User } from '../session.js';
import { Alert, FormDialog, Loading, SelectField, TextField, notify, useAction, useAsync } from '../ui.js';

/** GET /users/:id/erasure (src/privacy/routes.ts) */
interface Plan {
  userId: string;
  state: string;
  soleOwned: string[];
  memberships: number;
  signedIn: boolean;
  deletable: boolean;
}

/**
 * The admin's erasure dialog (GDPR art. 17, docs/gdpr.md): says what happens, asks what becomes of
 * the workspaces the person alone owns (a new owner, or the trash), and wants the user name typed
 * again. An account that never signed in and holds no membership can be deleted outright instead.
 */
export function EraseDialog({ user, users, onClose, onDone }: { user: User | undefined; users: readonly User[]; onClose: () => void; onDone: () => void }) {
  const plan = useAsync((signal) => (user ? get<Plan>(`/users/${encodeURIComponent(user.id)}/erasure`, { signal }) : Promise.resolve(undefined)), [user?.id]);
  const [typed, setTyped] = useState('');
  const [handover, setHandover] = useState('');
  const owners = users.filter((u) => u.id !== user?.id && u.state === 'active' && (u.role === 'member' || u.role === 'admin'));
  const p = plan.data;
  const needsChoice = !!p && p.soleOwned.length > 0;
  const close = () => {
    setTyped('');
    setHandover('');
    onClose();
  };
  const erase = useAction(async () => {
    if (!user || !p) return;
    const choice = !needsChoice ? {} : handover === 'trash' ? { trash: true } : { transferTo: handover };
    const r = await post<{ sessionsEnded: number; tokensRevoked: number; workspacesTransferred: string[]; workspacesTrashed: string[] }>(`/users/${encodeURIComponent(user.id)}/erase`, { confirm: typed.trim(), ...choice });
    notify(`${user.username} was erased: ${r.sessionsEnded} session(s) ended, ${r.tokensRevoked} API token(s) revoked${r.workspacesTransferred.length ? `, ${r.workspacesTransferred.length} workspace(s) handed over` : ''}${r.workspacesTrashed.length ? `, ${r.workspacesTrashed.length} workspace(s) sent to the trash` : ''}`);
    close();
    onDone();
  });
  const remove = useAction(async () => {
    if (!user) return;
    await post(`/users/${encodeURIComponent(user.id)}/delete`, { confirm: typed.trim() });
    notify(`${user.username} was deleted`);
    close();
    onDone();
  });
  const ready = !!user && !!p && typed.trim().toLowerCase() === user.username.toLowerCase() && (!needsChoice || handover !== '');
  return (
    <FormDialog open={!!user} title={user ? `Erase ${user.username}` : 'Erase'} id="erase-user" class="stack" submitLabel="Erase for good" action={erase} ready={ready} onClose={close}>
      {plan.loading && !p ? <Loading /> : null}
      <Alert kind="error" title="This cannot be undone">
        <span data-testid="erase-consequence">
          Their e-mail address and phone number are destroyed (their encryption key is deleted), their user name is removed, and every session and API token of theirs ends now. The directory will show “erased user”. The audit trail keeps their id, so it still
          verifies; it names no one. They can never sign in again.
        </span>
      </Alert>
      {needsChoice ? (
        <SelectField
          label={`They alone own ${p!.soleOwned.length} workspace(s). What becomes of it?`}
          value={handover}
          onValue={setHandover}
          options={[{ value: '', label: 'Choose…' }, ...owners.map((o) => ({ value: o.id, label: `Give it to ${o.username}` })), { value: 'trash', label: 'Send its documents to the trash (archived, purged after the trash retention)' }]}
        />
      ) : null}
      <TextField label={`Type ${user?.username ?? ''} to confirm`} value={typed} onValue={setTyped} required autoCapitalize="none" spellcheck={false} />
      {p?.deletable ? (
        <p class="muted small">
          This account never signed in and holds no membership: it can also be{' '}
          <button type="button" class="btn btn-ghost btn-sm" disabled={!ready || remove.busy} onClick={() => void remove.run()}>
            deleted outright
          </button>
          .
        </p>
      ) : null}
    </FormDialog>
  );
}
