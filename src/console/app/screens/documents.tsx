import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, del, describeError, get, patch, post, put, upload, url } from '../api.js';
import { href, navigate, type Route } from '../router.js';
import { activity, can, type Me, type User } from '../session.js';
import { t } from '../i18n/index.js';
import { DocumentHistory } from './history.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  FormDialog,
  Facts,
  Icon,
  Loading,
  PageHeader,
  Progress,
  SelectField,
  TextField,
  Time,
  bytes,
  confirmAction,
  notify,
  useAction,
  useAsync,
  when,
} from '../ui.js';

/** a workspace role in the console's language */
const wsRole = (r: string): string =>
  r === 'owner' || r === 'editor' || r === 'viewer' ? t(`documents.roles.${r}`) : r;

/** Workspaces (src/access) and their documents (src/vault). */
interface Workspace {
  id: string;
  name: string;
  quotaBytes: number | null;
  createdAt: string;
  state: string;
  role: 'owner' | 'editor' | 'viewer';
}
interface Member {
  userId: string;
  username: string;
  role: string;
  addedAt: string;
}
interface Folder {
  id: string;
  workspaceId: string;
  parentId: string | null;
  name: string;
  createdAt: string;
  updatedAt: string;
}
interface Item {
  id: string;
  folderId: string | null;
  name: string;
  tags: string[];
  version: number;
  size: number;
  createdAt: string;
  updatedAt: string;
  trashedAt: string | null;
}
interface Version {
  version: number;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  createdBy: string;
}
interface Doc extends Omit<Item, 'folderId'> {
  workspaceId: string;
  folderId: string | null;
  description: string | null;
  createdBy: string;
  versions: Version[];
}
interface UploadReply {
  id: string;
  version: number;
  size: number;
  sha256: string;
  created: boolean;
}

const canWrite = (ws: Workspace | undefined) => ws?.role === 'owner' || ws?.role === 'editor';

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

/** the workspace, or the not-found / not-a-member state */
function useWorkspace(id: string) {
  return useAsync((signal) => get<Workspace>(`/workspaces/${encodeURIComponent(id)}`, { signal }), [id]);
}

function NoAccess({ error }: { error: unknown }) {
  const forbidden = error instanceof ApiError && (error.status === 404 || error.status === 403);
  if (!forbidden) return <ErrorAlert error={error} />;
  return (
    <Card>
      <EmptyState
        icon="lock"
        title={t('documents.noAccess.title')}
        action={<a href="#/workspaces">{t('documents.noAccess.back')}</a>}
      >
        {t('documents.noAccess.text')}
      </EmptyState>
    </Card>
  );
}

export function WorkspacePage({ me, ws: wsId, route }: { me: Me; ws: string; route: Route }) {
  const ws = useWorkspace(wsId);
  const folderId = route.query.get('folder') ?? undefined;
  const q = route.query.get('q') ?? '';
  const trash = route.query.get('view') === 'trash';
  const [search, setSearch] = useState(q);
  useEffect(() => setSearch(q), [q]);
  const folders = useAsync(
    (signal) =>
      get<{ folders: Folder[] }>(`/workspaces/${encodeURIComponent(wsId)}/folders`, {
        signal,
        query: { parentId: 'all' },
      }),
    [wsId],
  );
  const [extra, setExtra] = useState<Item[]>([]);
  const [next, setNext] = useState<string | null>(null);
  // the search text is confidential: it goes in a POST body, never in a URL (URLs get logged)
  const page = (cursor: string | undefined, signal?: AbortSignal) => {
    const path = `/workspaces/${encodeURIComponent(wsId)}/documents`;
    const f = {
      folderId: q || trash ? undefined : (folderId ?? 'root'),
      trash: trash || undefined,
      limit: 100,
      cursor,
    };
    return q
      ? post<{ items: Item[]; next: string | null; total: number | null }>(
          `${path}/search`,
          { ...f, q },
          signal ? { signal } : {},
        )
      : get<{ items: Item[]; next: string | null; total: number | null }>(path, {
          ...(signal ? { signal } : {}),
          query: f,
        });
  };
  const docs = useAsync(
    async (signal) => {
      const r = await page(undefined, signal);
      setExtra([]);
      setNext(r.next);
      return r;
    },
    [wsId, folderId, q, trash],
  );
  const usage = useAsync(
    (signal) =>
      get<{ usedBytes: number; quotaBytes: number | null; documents: number }>(
        `/workspaces/${encodeURIComponent(wsId)}/usage`,
        { signal },
      ),
    [wsId],
  );
  const more = useAction(async () => {
    const r = await page(next ?? undefined);
    setExtra((x) => [...x, ...r.items]);
    setNext(r.next);
  });
  const [newFolder, setNewFolder] = useState(false);
  const [folderName, setFolderName] = useState('');
  const mkdir = useAction(async () => {
    await post(`/workspaces/${encodeURIComponent(wsId)}/folders`, {
      name: folderName.trim(),
      parentId: folderId ?? null,
    });
    setNewFolder(false);
    setFolderName('');
    folders.reload();
  });
  const trashDoc = useAction(async (d: Item) => {
    if (!(await confirmTrash(d.name))) return;
    await del(`/documents/${encodeURIComponent(d.id)}`);
    notify(t('documents.trash.done', { name: d.name }));
    docs.reload();
    usage.reload();
  });
  const restore = useAction(async (d: Item) => {
    await post(`/documents/${encodeURIComponent(d.id)}/restore`);
    notify(t('documents.trash.restored', { name: d.name }));
    docs.reload();
  });
  const rmdir = useAction(async (f: Folder) => {
    const ok = await confirmAction({
      title: t('documents.rmdir.title', { name: f.name }),
      body: <p>{t('documents.rmdir.body', { name: f.name })}</p>,
      confirmLabel: t('documents.rmdir.confirm'),
      danger: true,
    });
    if (!ok) return;
    await del(`/folders/${encodeURIComponent(f.id)}`);
    folders.reload();
  });

  if (ws.error) {
    return (
      <>
        <PageHeader title={t('documents.workspace')} back={{ href: '#/workspaces', label: t('nav.workspaces') }} />
        <NoAccess error={ws.error} />
      </>
    );
  }
  if (!ws.data) return <Loading />;
  const w = ws.data;
  const writable = canWrite(w) && w.state === 'active';
  const allFolders = folders.data?.folders ?? [];
  const path = folderPath(allFolders, folderId);
  const subfolders = q || trash ? [] : allFolders.filter((f) => f.parentId === (folderId ?? null));
  const items = [...(docs.data?.items ?? []), ...extra];
  const base = `/workspaces/${encodeURIComponent(wsId)}`;
  const goto = (query: Record<string, string | undefined>) => navigate(base, query);

  return (
    <>
      <PageHeader
        title={w.name}
        back={{ href: '#/workspaces', label: t('nav.workspaces') }}
        description={
          <>
            <Badge kind={w.role === 'owner' ? 'accent' : 'neutral'}>{wsRole(w.role)}</Badge>{' '}
            {usage.data ? (
              <span>
                {t('documents.usage.count', { count: usage.data.documents })} ·{' '}
                {usage.data.quotaBytes !== null
                  ? t('documents.usage.usedOf', {
                      used: bytes(usage.data.usedBytes),
                      quota: bytes(usage.data.quotaBytes),
                    })
                  : t('documents.usage.used', { used: bytes(usage.data.usedBytes) })}
              </span>
            ) : null}
          </>
        }
        actions={
          <>
            <a class="btn btn-secondary" href={`#${base}/members`}>
              <Icon name="users" /> {t('documents.members.title')}
            </a>
            {writable && !trash ? (
              <Button onClick={() => setNewFolder(true)}>
                <Icon name="folder" /> {t('documents.folder.new')}
              </Button>
            ) : null}
          </>
        }
      />
      {writable && !trash && !q ? (
        <Uploader
          workspaceId={wsId}
          folderId={folderId}
          onDone={() => {
            docs.reload();
            usage.reload();
          }}
        />
      ) : null}
      <Card class="flush">
        <div class="toolbar">
          <nav class="breadcrumbs" aria-label={t('documents.folder.label')}>
            {trash ? (
              <strong>{t('documents.trash.title')}</strong>
            ) : q ? (
              <span>
                {t('documents.search.results')} <strong>“{q}”</strong>
              </span>
            ) : (
              <>
                <a href={href(base)}>{t('documents.all')}</a>
                {path.map((f) => (
                  <>
                    <span aria-hidden="true">/</span>
                    <a href={href(base, { folder: f.id })}>{f.name}</a>
                  </>
                ))}
              </>
            )}
          </nav>
          <span class="spacer" />
          <form
            class="search"
            role="search"
            onSubmit={(e) => {
              e.preventDefault();
              goto({ q: search.trim() || undefined, view: trash ? 'trash' : undefined });
            }}
          >
            <Icon name="search" />
            <label class="sr-only" for="doc-search">
              {t('documents.search.label')}
            </label>
            <input
              id="doc-search"
              class="input"
              type="search"
              placeholder={t('documents.search.placeholder')}
              value={search}
              onInput={(e) => setSearch(e.currentTarget.value)}
            />
          </form>
          {q ? (
            <Button small onClick={() => goto({ folder: folderId })}>
              {t('documents.search.clear')}
            </Button>
          ) : null}
          <Button
            small
            variant={trash ? 'primary' : 'secondary'}
            onClick={() => goto(trash ? {} : { view: 'trash' })}
            aria-pressed={trash ? 'true' : 'false'}
          >
            <Icon name="trash" /> {t('documents.trash.title')}
          </Button>
        </div>
        <ErrorAlert error={docs.error ?? trashDoc.error ?? restore.error ?? rmdir.error ?? more.error} />
        {docs.loading && !docs.data ? <Loading /> : null}
        {docs.data && items.length === 0 && subfolders.length === 0 ? (
          <EmptyState
            icon={trash ? 'trash' : q ? 'search' : 'inbox'}
            title={trash ? t('documents.empty.trash') : q ? t('documents.empty.search') : t('documents.empty.folder')}
          >
            {trash
              ? t('documents.empty.trashText')
              : q
                ? t('documents.empty.searchText')
                : writable
                  ? t('documents.empty.dropText')
                  : t('documents.empty.readText')}
          </EmptyState>
        ) : null}
        {items.length > 0 || subfolders.length > 0 ? (
          <div class="table-wrap">
            <table class="table" aria-label={t('documents.label')}>
              <thead>
                <tr>
                  <th>{t('documents.col.name')}</th>
                  <th class="num">{t('documents.col.size')}</th>
                  <th class="num">{t('documents.col.version')}</th>
                  <th>{trash ? t('documents.col.deleted') : t('documents.col.modified')}</th>
                  <th class="actions">
                    <span class="sr-only">{t('common.actions')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {subfolders.map((f) => (
                  <tr>
                    <td>
                      <span class="name-cell">
                        <Icon name="folder" />
                        <a href={href(base, { folder: f.id })}>{f.name}</a>
                      </span>
                    </td>
                    <td class="num">—</td>
                    <td class="num">—</td>
                    <td>
                      <Time t={f.updatedAt} />
                    </td>
                    <td class="actions">
                      {writable ? (
                        <Button
                          small
                          variant="ghost"
                          aria-label={t('documents.rmdir.label', { name: f.name })}
                          onClick={() => void rmdir.run(f)}
                        >
                          <Icon name="trash" />
                        </Button>
                      ) : null}
                    </td>
                  </tr>
                ))}
                {items.map((d) => (
                  <tr data-doc={d.name}>
                    <td>
                      <span class="name-cell">
                        <Icon name="file" />
                        <a href={`#${base}/documents/${encodeURIComponent(d.id)}`}>{d.name}</a>
                        {d.tags.map((tag) => (
                          <Badge>{tag}</Badge>
                        ))}
                      </span>
                    </td>
                    <td class="num">{bytes(d.size)}</td>
                    <td class="num">v{d.version}</td>
                    <td>
                      <Time t={trash ? d.trashedAt : d.updatedAt} />
                    </td>
                    <td class="actions">
                      {trash ? (
                        writable ? (
                          <Button small onClick={() => void restore.run(d)}>
                            <Icon name="restore" /> {t('documents.restore')}
                          </Button>
                        ) : null
                      ) : (
                        <>
                          <DownloadButton id={d.id} name={d.name} />
                          {writable ? (
                            <Button
                              small
                              variant="ghost"
                              aria-label={t('documents.trash.label', { name: d.name })}
                              onClick={() => void trashDoc.run(d)}
                            >
                              <Icon name="trash" />
                            </Button>
                          ) : null}
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {next ? (
          <div class="pager">
            <span class="muted small">{t('documents.shown', { count: items.length })}</span>
            <Button small busy={more.busy} onClick={() => void more.run()}>
              {t('documents.more')}
            </Button>
          </div>
        ) : null}
      </Card>
      <FormDialog
        open={newFolder}
        title={t('documents.folder.new')}
        id="mkdir"
        submitLabel={t('documents.create')}
        action={mkdir}
        ready={!!folderName.trim()}
        onClose={() => setNewFolder(false)}
      >
        <TextField label={t('documents.folder.name')} value={folderName} onValue={setFolderName} required autoFocus />
      </FormDialog>
    </>
  );
}

function folderPath(all: Folder[], id: string | undefined): Folder[] {
  const out: Folder[] = [];
  const seen = new Set<string>();
  let cur = id ? all.find((f) => f.id === id) : undefined;
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    out.unshift(cur);
    cur = cur.parentId ? all.find((f) => f.id === cur!.parentId) : undefined;
  }
  return out;
}

/**
 * Downloads stream straight to disk through the browser's own download (an attachment from the
 * same origin; the cookie goes with it, a GET needs no CSRF token). The session is checked first,
 * so an expired one sends the person to sign in instead of saving an error as a file.
 */
export function DownloadButton({
  id,
  name,
  version,
  label,
}: {
  id: string;
  name: string;
  version?: number;
  label?: string;
}) {
  const act = useAction(async () => {
    await get(`/documents/${encodeURIComponent(id)}`);
    const a = document.createElement('a');
    a.href = url(`/documents/${encodeURIComponent(id)}/content`, version ? { version } : undefined);
    a.download = name;
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  useEffect(() => {
    if (act.error) notify(describeError(act.error).title, 'error');
  }, [act.error]);
  return (
    <Button
      small
      busy={act.busy}
      onClick={() => void act.run()}
      aria-label={
        version ? t('documents.download.versionLabel', { name, version }) : t('documents.download.label', { name })
      }
    >
      <Icon name="download" /> {label ?? t('documents.download.button')}
    </Button>
  );
}

interface UploadState {
  key: number;
  name: string;
  size: number;
  sent: number;
  status: 'queued' | 'uploading' | 'done' | 'failed' | 'cancelled';
  error?: unknown;
  abort?: AbortController;
}

let uploadSeq = 0;

/** drag-and-drop (or choose) files; each streams up with its own progress bar, one at a time */
function Uploader({
  workspaceId,
  folderId,
  documentId,
  onDone,
}: {
  workspaceId: string;
  folderId?: string | undefined;
  documentId?: string;
  onDone: () => void;
}) {
  const [over, setOver] = useState(false);
  const [rows, setRows] = useState<UploadState[]>([]);
  const input = useRef<HTMLInputElement>(null);
  const queue = useRef<{ key: number; file: File }[]>([]);
  const running = useRef(false);
  const update = (key: number, p: Partial<UploadState>) =>
    setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...p } : r)));

  const pump = async () => {
    if (running.current) return;
    running.current = true;
    try {
      for (let job = queue.current.shift(); job; job = queue.current.shift()) {
        const { key, file } = job;
        const abort = new AbortController();
        update(key, { status: 'uploading', abort });
        try {
          const type = file.type || 'application/octet-stream';
          const path = documentId
            ? `/documents/${encodeURIComponent(documentId)}/versions`
            : `/workspaces/${encodeURIComponent(workspaceId)}/documents`;
          // ids and the media type in the URL; the name in a header (URLs get logged), RFC 8187 encoded
          const query = documentId ? { type } : { folderId, type };
          const named: Record<string, string> = documentId
            ? {}
            : { 'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}` };
          // one Idempotency-Key per upload: when the connection drops before the answer, the retry
          // gets the version the appliance may already have stored instead of a duplicate
          const idempotencyKey = crypto.randomUUID();
          const send = () =>
            upload<UploadReply>(path, file, {
              query,
              headers: { 'content-type': 'application/octet-stream', 'idempotency-key': idempotencyKey, ...named },
              signal: abort.signal,
              onProgress: (sent) => (activity(), update(key, { sent })),
            });
          const r = await send().catch((e: unknown) =>
            e instanceof ApiError && e.code === 'NETWORK' && !abort.signal.aborted ? send() : Promise.reject(e),
          );
          update(key, { status: 'done', sent: file.size });
          notify(t('documents.upload.done', { name: file.name, version: r.version }));
          onDone();
        } catch (e) {
          if ((e as Error).name === 'AbortError') update(key, { status: 'cancelled' });
          else update(key, { status: 'failed', error: e });
        }
      }
    } finally {
      running.current = false;
    }
  };

  const add = (files: FileList | null) => {
    if (!files?.length) return;
    const list = documentId ? [files[0]!] : [...files];
    const added = list.map((file) => ({ key: ++uploadSeq, file }));
    queue.current.push(...added);
    setRows((rs) => [
      ...rs.filter((r) => r.status === 'uploading' || r.status === 'queued' || r.status === 'failed'),
      ...added.map(({ key, file }) => ({ key, name: file.name, size: file.size, sent: 0, status: 'queued' as const })),
    ]);
    void pump();
  };

  return (
    <div
      class={`dropzone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        add(e.dataTransfer?.files ?? null);
      }}
      data-testid="dropzone"
    >
      <Icon name="upload" size={24} />
      <div>{documentId ? t('documents.upload.dropVersion') : t('documents.upload.drop')}</div>
      <input
        ref={input}
        id={`file-${documentId ?? 'new'}`}
        class="sr-only"
        type="file"
        multiple={!documentId}
        onChange={(e) => (add(e.currentTarget.files), (e.currentTarget.value = ''))}
      />
      <Button onClick={() => input.current?.click()}>
        <Icon name="upload" /> {documentId ? t('documents.upload.chooseOne') : t('documents.upload.choose')}
      </Button>
      {rows.length ? (
        <div class="uploads" aria-label={t('documents.upload.label')}>
          {rows.map((r) => (
            <div class="upload-row" data-status={r.status} data-name={r.name}>
              <div class="row">
                <strong>{r.name}</strong>
                <span class="muted small">
                  {r.status === 'uploading'
                    ? t('documents.upload.progress', { sent: bytes(r.sent), size: bytes(r.size) })
                    : r.status === 'queued'
                      ? t('documents.upload.waiting')
                      : r.status === 'done'
                        ? t('documents.upload.stored', { size: bytes(r.size) })
                        : r.status === 'cancelled'
                          ? t('documents.upload.cancelled')
                          : t('documents.upload.failed')}
                </span>
              </div>
              {r.status === 'uploading' || r.status === 'done' ? (
                <Progress value={r.sent} max={r.size} label={t('documents.upload.of', { name: r.name })} />
              ) : null}
              {r.status === 'uploading' ? (
                <Button small variant="ghost" onClick={() => r.abort?.abort()}>
                  {t('common.cancel')}
                </Button>
              ) : null}
              {r.status === 'failed' ? <ErrorAlert error={r.error} /> : null}
            </div>
          ))}
        </div>
      ) : null}
    </div>
  );
}

export function DocumentPage({ ws: wsId, doc: docId }: { me: Me; ws: string; doc: string }) {
  const ws = useWorkspace(wsId);
  const doc = useAsync((signal) => get<Doc>(`/documents/${encodeURIComponent(docId)}`, { signal }), [docId]);
  const [renaming, setRenaming] = useState(false);
  const [tab, setTab] = useState<'versions' | 'history'>('versions');
  const [name, setName] = useState('');
  const rename = useAction(async () => {
    doc.set(
      await patch<Doc>(`/documents/${encodeURIComponent(docId)}`, { name: name.trim() }).then((d) => ({
        ...doc.data!,
        ...d,
      })),
    );
    setRenaming(false);
  });
  const trash = useAction(async () => {
    if (!(await confirmTrash(doc.data?.name ?? ''))) return;
    await del(`/documents/${encodeURIComponent(docId)}`);
    doc.reload();
  });
  const restore = useAction(async () => {
    await post(`/documents/${encodeURIComponent(docId)}/restore`);
    doc.reload();
  });
  const back = { href: `#/workspaces/${encodeURIComponent(wsId)}`, label: ws.data?.name ?? t('documents.workspace') };
  if (doc.error) {
    return (
      <>
        <PageHeader title={t('documents.document')} back={back} />
        <NoAccess error={doc.error} />
      </>
    );
  }
  if (!doc.data) return <Loading />;
  const d = doc.data;
  const writable = canWrite(ws.data);
  return (
    <>
      <PageHeader
        title={d.name}
        back={back}
        description={d.description ?? undefined}
        actions={
          d.trashedAt ? (
            writable ? (
              <Button variant="primary" busy={restore.busy} onClick={() => void restore.run()}>
                <Icon name="restore" /> {t('documents.restore')}
              </Button>
            ) : null
          ) : (
            <>
              <DownloadButton id={d.id} name={d.name} label={t('documents.download.latest')} />
              {writable ? (
                <Button onClick={() => (setName(d.name), setRenaming(true))}>{t('documents.rename.button')}</Button>
              ) : null}
              {writable ? (
                <Button variant="danger" busy={trash.busy} onClick={() => void trash.run()}>
                  <Icon name="trash" /> {t('documents.trash.move')}
                </Button>
              ) : null}
            </>
          )
        }
      />
      <ErrorAlert error={trash.error ?? restore.error} />
      {d.trashedAt ? (
        <Alert kind="warn" title={t('documents.trash.inTrash')}>
          {t('documents.trash.deletedOn', { date: when(d.trashedAt) })}
        </Alert>
      ) : null}
      <Card title={t('documents.details')}>
        <Facts
          items={[
            [t('documents.col.size'), bytes(d.size)],
            [t('documents.latest'), `v${d.version}`],
            [t('keys.col.created'), <Time t={d.createdAt} />],
            [t('documents.col.modified'), <Time t={d.updatedAt} />],
            [t('documents.tags'), d.tags.length ? d.tags.join(', ') : '—'],
          ]}
        />
      </Card>
      {writable && !d.trashedAt ? <Uploader workspaceId={wsId} documentId={d.id} onDone={() => doc.reload()} /> : null}
      <div class="tabs" role="tablist" aria-label={t('records.tabs.label')}>
        <button
          type="button"
          role="tab"
          id="tab-versions"
          aria-selected={tab === 'versions'}
          aria-controls="panel-doc"
          class={tab === 'versions' ? 'tab active' : 'tab'}
          onClick={() => setTab('versions')}
        >
          {t('records.tabs.versions')}
        </button>
        <button
          type="button"
          role="tab"
          id="tab-history"
          aria-selected={tab === 'history'}
          aria-controls="panel-doc"
          class={tab === 'history' ? 'tab active' : 'tab'}
          onClick={() => setTab('history')}
        >
          {t('records.tabs.history')}
        </button>
      </div>
      <div role="tabpanel" id="panel-doc" aria-labelledby={tab === 'versions' ? 'tab-versions' : 'tab-history'}>
        {tab === 'history' ? (
          <Card title={t('records.history.title')}>
            <DocumentHistory id={d.id} />
          </Card>
        ) : (
          <Card title={t('records.tabs.versions')} class="flush">
            <div class="table-wrap">
              <table class="table" aria-label="Versions">
                <thead>
                  <tr>
                    <th>{t('documents.col.version')}</th>
                    <th class="num">{t('documents.col.size')}</th>
                    <th>{t('documents.col.type')}</th>
                    <th>{t('documents.col.added')}</th>
                    <th>SHA-256</th>
                    <th class="actions">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.versions.map((v) => (
                    <tr>
                      <td>v{v.version}</td>
                      <td class="num">{bytes(v.size)}</td>
                      <td class="mono small">{v.mediaType}</td>
                      <td>
                        <Time t={v.createdAt} />
                      </td>
                      <td class="mono small" title={v.sha256}>
                        {v.sha256.slice(0, 16)}…
                      </td>
                      <td class="actions">
                        {d.trashedAt ? null : <DownloadButton id={d.id} name={d.name} version={v.version} />}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        )}
      </div>
      <FormDialog
        open={renaming}
        title={t('documents.rename.title')}
        id="rename"
        submitLabel={t('documents.rename.button')}
        action={rename}
        ready={!!name.trim()}
        onClose={() => setRenaming(false)}
      >
        <TextField label={t('documents.col.name')} value={name} onValue={setName} required autoFocus />
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

/** moving to the trash says what it means: recoverable from the trash until it is purged */
function confirmTrash(name: string): Promise<boolean> {
  return confirmAction({
    title: t('documents.trash.confirmTitle', { name }),
    body: <p>{t('documents.trash.confirmBody', { name })}</p>,
    confirmLabel: t('documents.trash.move'),
    danger: true,
  });
}
