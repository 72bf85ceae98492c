import { useEffect, useState } from 'preact/hooks';
import { del, get, post, put } from '../api.js';
import { navigate } from '../router.js';
import { can, type Me } from '../session.js';
import { t } from '../i18n/index.js';
import {
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
  bytes,
  confirmAction,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { NoAccess, useWorkspace, wsRole } from './docs/common.js';
import type { Workspace } from './docs/types.js';

/** Workspaces (src/access) and their documents (src/vault); the documents screens live in ./docs/. */
interface Member {
  userId: string;
  username: string;
  role: string;
  addedAt: string;
}

export { WorkspacePage } from './docs/workspace.js';
export { DocumentPage } from './docs/document.js';
export { DownloadButton } from './docs/transfer.js';

export function WorkspacesPage({ me }: { me: Me }) {
  const list = useAsync((signal) => get<{ workspaces: Workspace[] }>('/workspaces', { signal }), []);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const create = useAction(async () => {
    const r = await post<{ id: string }>('/workspaces', { name: name.trim() });
    setCreating(false);
    setName('');
    notify(t('documents.ws.created'));
    navigate(`/workspaces/${r.id}`);
  });
  const mayCreate = can(me, 'workspace:create');
  return (
    <>
      <PageHeader
        title={t('nav.workspaces')}
        description={t('documents.ws.description')}
        actions={
          mayCreate ? (
            <Button variant="primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> {t('documents.ws.new')}
            </Button>
          ) : null
        }
      />
      <ErrorAlert error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && list.data.workspaces.length === 0 ? (
        <Card>
          <EmptyState
            icon="folder"
            title={t('documents.ws.none')}
            action={
              mayCreate ? (
                <Button variant="primary" onClick={() => setCreating(true)}>
                  {t('documents.ws.create')}
                </Button>
              ) : null
            }
          >
            {mayCreate ? t('documents.ws.noneCreate') : t('documents.ws.noneAsk')}
          </EmptyState>
        </Card>
      ) : null}
      {list.data && list.data.workspaces.length > 0 ? (
        <Card class="flush">
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th>{t('documents.col.name')}</th>
                  <th>{t('documents.ws.yourRole')}</th>
                  <th class="num">{t('documents.ws.quota')}</th>
                  <th>{t('keys.col.created')}</th>
                </tr>
              </thead>
              <tbody>
                {list.data.workspaces.map((w) => (
                  <tr>
                    <td>
                      <span class="name-cell">
                        <Icon name="folder" />
                        <a href={`#/workspaces/${encodeURIComponent(w.id)}`}>{w.name}</a>
                      </span>
                    </td>
                    <td>
                      <Badge kind={w.role === 'owner' ? 'accent' : 'neutral'}>{wsRole(w.role)}</Badge>
                    </td>
                    <td class="num">{w.quotaBytes === null ? t('common.none') : bytes(w.quotaBytes)}</td>
                    <td>
                      <Time t={w.createdAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      ) : null}
      <FormDialog
        open={creating}
        title={t('documents.ws.new')}
        id="ws-create"
        submitLabel={t('documents.create')}
        action={create}
        ready={!!name.trim()}
        onClose={() => setCreating(false)}
      >
        <TextField
          label={t('documents.col.name')}
          value={name}
          onValue={setName}
          required
          autoFocus
          hint={t('documents.ws.nameHint')}
        />
      </FormDialog>
    </>
  );
}

export function MembersPage({ me, ws: wsId }: { me: Me; ws: string }) {
  const ws = useWorkspace(wsId);
  const members = useAsync(
    (signal) => get<{ members: Member[] }>(`/workspaces/${encodeURIComponent(wsId)}/members`, { signal }),
    [wsId],
  );
  const [role, setRole] = useState('editor');
  const [picked, setPicked] = useState<Candidate | undefined>();
  const add = useAction(async () => {
    if (!picked) return;
    await put(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(picked.userId)}`, { role });
    notify(t('documents.members.added', { username: picked.username, role: wsRole(role) }));
    setPicked(undefined);
    members.reload();
  });
  const change = useAction(async (m: Member, r: string) => {
    const names = { username: m.username, role: wsRole(r), current: wsRole(m.role) };
    const ok = await confirmAction({
      title: t('documents.members.roleTitle', names),
      body: <p>{t(`documents.members.roleBody.${r === 'owner' || r === 'editor' ? r : 'viewer'}`, names)}</p>,
      confirmLabel: t('documents.members.roleConfirm', names),
    });
    if (!ok) return members.reload();
    await put(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(m.userId)}`, { role: r });
    members.reload();
  });
  const remove = useAction(async (m: Member) => {
    const ok = await confirmAction({
      title: t('documents.members.removeTitle', { username: m.username }),
      body: <p>{t('documents.members.removeBody', { username: m.username, workspace: ws.data?.name ?? '' })}</p>,
      confirmLabel: t('documents.members.removeConfirm'),
      danger: true,
    });
    if (!ok) return;
    await del(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(m.userId)}`);
    notify(t('documents.members.removed', { username: m.username }));
    members.reload();
  });
  const back = { href: `#/workspaces/${encodeURIComponent(wsId)}`, label: ws.data?.name ?? t('documents.workspace') };
  if (ws.error) {
    return (
      <>
        <PageHeader title={t('documents.members.title')} back={back} />
        <NoAccess error={ws.error} />
      </>
    );
  }
  const owner = ws.data?.role === 'owner';
  return (
    <>
      <PageHeader title={t('documents.members.title')} back={back} description={t('documents.members.description')} />
      <ErrorAlert error={members.error ?? change.error ?? remove.error} />
      {owner ? (
        <Card title={t('documents.members.add')}>
          <ErrorAlert error={add.error} />
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (picked) void add.run();
            }}
          >
            <MemberPicker wsId={wsId} picked={picked} onPick={setPicked} />
            <SelectField
              label={t('admin.col.role')}
              value={role}
              onValue={setRole}
              options={['viewer', 'editor', 'owner'].map((r) => ({ value: r, label: wsRole(r) }))}
            />
            <Button type="submit" variant="primary" busy={add.busy} disabled={!picked}>
              Add
            </Button>
          </form>
        </Card>
      ) : null}
      <Card class="flush">
        {members.loading && !members.data ? <Loading /> : null}
        {members.data ? (
          <div class="table-wrap">
            <table class="table" aria-label="Members">
              <thead>
                <tr>
                  <th>User</th>
                  <th>Role</th>
                  <th>Added</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {members.data.members.map((m) => (
                  <tr>
                    <td>
                      {m.username} {m.userId === me.id ? <Badge kind="accent">{t('admin.you')}</Badge> : null}
                    </td>
                    <td>
                      {owner ? (
                        <select
                          class="input"
                          aria-label={t('admin.roleOf', { username: m.username })}
                          value={m.role}
                          onChange={(e) => void change.run(m, e.currentTarget.value)}
                        >
                          {['viewer', 'editor', 'owner'].map((r) => (
                            <option value={r}>{wsRole(r)}</option>
                          ))}
                        </select>
                      ) : (
                        <Badge>{wsRole(m.role)}</Badge>
                      )}
                    </td>
                    <td>
                      <Time t={m.addedAt} />
                    </td>
                    <td class="actions">
                      {owner && m.userId !== me.id ? (
                        <Button small variant="ghost" onClick={() => void remove.run(m)}>
                          {t('documents.members.remove')}
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
    </>
  );
}

interface Candidate {
  userId: string;
  username: string;
  member: boolean;
}

/**
 * Finds one person to add by their exact user name or e-mail address (POST
 * /workspaces/:id/member-candidates: owners only, the text in the body, a few look-ups an hour,
 * each audited). Nothing is looked up while typing: only when the owner asks. The result is a
 * button: keyboard and screen readers reach it like any other control.
 */
function MemberPicker({
  wsId,
  picked,
  onPick,
}: {
  wsId: string;
  picked: Candidate | undefined;
  onPick: (c: Candidate | undefined) => void;
}) {
  const [q, setQ] = useState('');
  const [found, setFound] = useState<Candidate[] | undefined>();
  const [error, setError] = useState<unknown>();
  const find = (e?: Event) => {
    e?.preventDefault();
    const text = q.trim();
    if (text.length < 2) return;
    post<{ users: Candidate[] }>(`/workspaces/${encodeURIComponent(wsId)}/member-candidates`, { q: text }).then(
      (r) => (setFound(r.users), setError(undefined)),
      (err: unknown) => (setFound(undefined), setError(err)),
    );
  };
  useEffect(() => setFound(undefined), [q]);
  if (picked) {
    return (
      <div class="picked" data-testid="picked-member">
        <span class="muted small">Person</span>
        <span>
          <Badge kind="accent">{picked.username}</Badge>{' '}
          <Button small variant="ghost" onClick={() => (onPick(undefined), setQ(''))}>
            Change
          </Button>
        </span>
      </div>
    );
  }
  return (
    <div class="picker">
      <div onKeyDown={(e) => e.key === 'Enter' && find(e)}>
        <TextField
          label={t('documents.picker.find')}
          value={q}
          onValue={setQ}
          autoComplete="off"
          spellcheck={false}
          hint={t('documents.picker.hint')}
        />
      </div>
      <Button small onClick={() => find()}>
        Find
      </Button>
      <ErrorAlert error={error} />
      {found ? (
        found.length ? (
          <ul class="candidates" aria-label={t('documents.picker.matching')}>
            {found.map((c) => (
              <li>
                <button
                  type="button"
                  class="btn btn-ghost btn-sm"
                  data-candidate={c.username}
                  disabled={c.member}
                  onClick={() => onPick(c)}
                >
                  {c.username}
                  {c.member ? <span class="muted small"> — already a member</span> : null}
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted small">{t('documents.picker.nobody')}</p>
        )
      ) : null}
    </div>
  );
}
