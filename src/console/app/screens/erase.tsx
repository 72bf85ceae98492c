import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import type { User } from '../session.js';
import { Alert, Button, FormDialog, Loading, SelectField, TextField, notify, useAction, useAsync } from '../ui.js';
import { t } from '../i18n/index.js';

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
export function EraseDialog({
  user,
  users,
  onClose,
  onDone,
}: {
  user: User | undefined;
  users: readonly User[];
  onClose: () => void;
  onDone: () => void;
}) {
  const plan = useAsync(
    (signal) =>
      user ? get<Plan>(`/users/${encodeURIComponent(user.id)}/erasure`, { signal }) : Promise.resolve(undefined),
    [user?.id],
  );
  const [typed, setTyped] = useState('');
  const [handover, setHandover] = useState('');
  const owners = users.filter(
    (u) => u.id !== user?.id && u.state === 'active' && (u.role === 'member' || u.role === 'admin'),
  );
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
    const r = await post<{
      sessionsEnded: number;
      tokensRevoked: number;
      workspacesTransferred: string[];
      workspacesTrashed: string[];
    }>(`/users/${encodeURIComponent(user.id)}/erase`, { confirm: typed.trim(), ...choice });
    notify(t('privacy.erase.done', { name: user.username, sessions: r.sessionsEnded, tokens: r.tokensRevoked }));
    close();
    onDone();
  });
  const remove = useAction(async () => {
    if (!user) return;
    await post(`/users/${encodeURIComponent(user.id)}/delete`, { confirm: typed.trim() });
    notify(t('privacy.erase.deleted', { name: user.username }));
    close();
    onDone();
  });
  const ready =
    !!user && !!p && typed.trim().toLowerCase() === user.username.toLowerCase() && (!needsChoice || handover !== '');
  return (
    <FormDialog
      open={!!user}
      title={t('privacy.erase.title', { name: user?.username ?? '' })}
      id="erase-user"
      class="stack"
      submitLabel={t('privacy.erase.submit')}
      action={erase}
      ready={ready}
      onClose={close}
    >
      {plan.loading && !p ? <Loading /> : null}
      <Alert kind="error" title={t('privacy.erase.warningTitle')}>
        <span data-testid="erase-consequence">{t('privacy.erase.consequence')}</span>
      </Alert>
      {needsChoice ? (
        <SelectField
          label={t('privacy.erase.soleOwned', { count: p!.soleOwned.length })}
          value={handover}
          onValue={setHandover}
          options={[
            { value: '', label: t('privacy.erase.choose') },
            ...owners.map((o) => ({ value: o.id, label: t('privacy.erase.giveTo', { name: o.username }) })),
            { value: 'trash', label: t('privacy.erase.trash') },
          ]}
        />
      ) : null}
      <TextField
        label={t('privacy.erase.confirm', { name: user?.username ?? '' })}
        value={typed}
        onValue={setTyped}
        required
        autoCapitalize="none"
        spellcheck={false}
      />
      {p?.deletable ? (
        <div class="stack">
          <p class="muted small">{t('privacy.erase.deletable')}</p>
          <Button
            small
            variant="danger"
            data-testid="delete-user"
            disabled={!ready}
            busy={remove.busy}
            onClick={() => void remove.run()}
          >
            {t('privacy.erase.delete')}
          </Button>
        </div>
      ) : null}
    </FormDialog>
  );
}
