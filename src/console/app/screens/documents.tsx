import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, del, describeError, get, patch, post, put, upload, url } from '../api.js';
import { href, navigate, type Route } from '../router.js';
import { activity, can, type Me, type User } from '../session.js';
import { t } from '../i18n/index.js';
import { DocumentHistory } from './history.js';
import { Alert, Badge, Button, Card, EmptyState, ErrorAlert, FormDialog, Facts, Icon, Loading, PageHeader, Progress, SelectField, TextField, Time, bytes, notify, useAction, useAsync } from '../ui.js';

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
    notify('Workspace created');
    navigate(`/workspaces/${r.id}`);
  });
  const mayCreate = can(me, 'workspace:create');
  return (
    <>
      <PageHeader
        title="Workspaces"
        description="Each workspace keeps its documents encrypted; only its members can open them."
        actions={
          mayCreate ? (
            <Button variant="primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> New workspace
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
            title="No workspaces yet"
            action={
              mayCreate ? (
                <Button variant="primary" onClick={() => setCreating(true)}>
                  Create a workspace
                </Button>
              ) : null
            }
          >
            {mayCreate ? 'Create one for a team or a project, then add its members.' : 'Ask a workspace owner to add you.'}
          </EmptyState>
        </Card>
      ) : null}
      {list.data && list.data.workspaces.length > 0 ? (
        <Card class="flush">
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Your role</th>
                  <th class="num">Quota</th>
                  <th>Created</th>
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
                      <Badge kind={w.role === 'owner' ? 'accent' : 'neutral'}>{w.role}</Badge>
                    </td>
                    <td class="num">{w.quotaBytes === null ? 'none' : bytes(w.quotaBytes)}</td>
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
      <FormDialog open={creating} title="New workspace" id="ws-create" submitLabel="Create" action={create} ready={!!name.trim()} onClose={() => setCreating(false)}>
        <TextField label="Name" value={name} onValue={setName} required autoFocus hint="Visible to the workspace's members only; stored encrypted." />
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
      <EmptyState icon="lock" title="You cannot open this workspace" action={<a href="#/workspaces">Back to your workspaces</a>}>
        Only its members can see a workspace and its documents. Administrators manage the appliance, not its content.
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
  const folders = useAsync((signal) => get<{ folders: Folder[] }>(`/workspaces/${encodeURIComponent(wsId)}/folders`, { signal, query: { parentId: 'all' } }), [wsId]);
  const [extra, setExtra] = useState<Item[]>([]);
  const [next, setNext] = useState<string | null>(null);
  // the search text is confidential: it goes in a POST body, never in a URL (URLs get logged)
  const page = (cursor: string | undefined, signal?: AbortSignal) => {
    const path = `/workspaces/${encodeURIComponent(wsId)}/documents`;
    const f = { folderId: q || trash ? undefined : (folderId ?? 'root'), trash: trash || undefined, limit: 100, cursor };
    return q
      ? post<{ items: Item[]; next: string | null; total: number | null }>(`${path}/search`, { ...f, q }, signal ? { signal } : {})
      : get<{ items: Item[]; next: string | null; total: number | null }>(path, { ...(signal ? { signal } : {}), query: f });
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
  const usage = useAsync((signal) => get<{ usedBytes: number; quotaBytes: number | null; documents: number }>(`/workspaces/${encodeURIComponent(wsId)}/usage`, { signal }), [wsId]);
  const more = useAction(async () => {
    const r = await page(next ?? undefined);
    setExtra((x) => [...x, ...r.items]);
    setNext(r.next);
  });
  const [newFolder, setNewFolder] = useState(false);
  const [folderName, setFolderName] = useState('');
  const mkdir = useAction(async () => {
    await post(`/workspaces/${encodeURIComponent(wsId)}/folders`, { name: folderName.trim(), parentId: folderId ?? null });
    setNewFolder(false);
    setFolderName('');
    folders.reload();
  });
  const trashDoc = useAction(async (d: Item) => {
    await del(`/documents/${encodeURIComponent(d.id)}`);
    notify(`"${d.name}" moved to the trash`);
    docs.reload();
    usage.reload();
  });
  const restore = useAction(async (d: Item) => {
    await post(`/documents/${encodeURIComponent(d.id)}/restore`);
    notify(`"${d.name}" restored`);
    docs.reload();
  });
  const rmdir = useAction(async (f: Folder) => {
    await del(`/folders/${encodeURIComponent(f.id)}`);
    folders.reload();
  });

  if (ws.error) {
    return (
      <>
        <PageHeader title="Workspace" back={{ href: '#/workspaces', label: 'Workspaces' }} />
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
        back={{ href: '#/workspaces', label: 'Workspaces' }}
        description={
          <>
            <Badge kind={w.role === 'owner' ? 'accent' : 'neutral'}>{w.role}</Badge>{' '}
            {usage.data ? (
              <span>
                {usage.data.documents} document{usage.data.documents === 1 ? '' : 's'} · {bytes(usage.data.usedBytes)} used{usage.data.quotaBytes !== null ? ` of ${bytes(usage.data.quotaBytes)}` : ''}
              </span>
            ) : null}
          </>
        }
        actions={
          <>
            <a class="btn btn-secondary" href={`#${base}/members`}>
              <Icon name="users" /> Members
            </a>
            {writable && !trash ? (
              <Button onClick={() => setNewFolder(true)}>
                <Icon name="folder" /> New folder
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
          <nav class="breadcrumbs" aria-label="Folder">
            {trash ? (
              <strong>Trash</strong>
            ) : q ? (
              <span>
                Results for <strong>“{q}”</strong>
              </span>
            ) : (
              <>
                <a href={href(base)}>All documents</a>
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
              Search documents by name
            </label>
            <input id="doc-search" class="input" type="search" placeholder="Search by name" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          </form>
          {q ? (
            <Button small onClick={() => goto({ folder: folderId })}>
              Clear search
            </Button>
          ) : null}
          <Button small variant={trash ? 'primary' : 'secondary'} onClick={() => goto(trash ? {} : { view: 'trash' })} aria-pressed={trash ? 'true' : 'false'}>
            <Icon name="trash" /> Trash
          </Button>
        </div>
        <ErrorAlert error={docs.error ?? trashDoc.error ?? restore.error ?? rmdir.error ?? more.error} />
        {docs.loading && !docs.data ? <Loading /> : null}
        {docs.data && items.length === 0 && subfolders.length === 0 ? (
          <EmptyState icon={trash ? 'trash' : q ? 'search' : 'inbox'} title={trash ? 'The trash is empty' : q ? 'No document matches' : 'No documents here yet'}>
            {trash ? 'Deleted documents stay here for a while before they are purged.' : q ? 'Try another part of the name.' : writable ? 'Drop files above, or choose them, to upload them.' : 'Documents added by editors will appear here.'}
          </EmptyState>
        ) : null}
        {items.length > 0 || subfolders.length > 0 ? (
          <div class="table-wrap">
            <table class="table" aria-label="Documents">
              <thead>
                <tr>
                  <th>Name</th>
                  <th class="num">Size</th>
                  <th class="num">Version</th>
                  <th>{trash ? 'Deleted' : 'Modified'}</th>
                  <th class="actions">
                    <span class="sr-only">Actions</span>
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
                        <Button small variant="ghost" aria-label={`Delete folder ${f.name}`} onClick={() => void rmdir.run(f)}>
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
                        {d.tags.map((t) => (
                          <Badge>{t}</Badge>
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
                            <Icon name="restore" /> Restore
                          </Button>
                        ) : null
                      ) : (
                        <>
                          <DownloadButton id={d.id} name={d.name} />
                          {writable ? (
                            <Button small variant="ghost" aria-label={`Move ${d.name} to the trash`} onClick={() => void trashDoc.run(d)}>
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
            <span class="muted small">{items.length} shown</span>
            <Button small busy={more.busy} onClick={() => void more.run()}>
              Load more
            </Button>
          </div>
        ) : null}
      </Card>
      <FormDialog open={newFolder} title="New folder" id="mkdir" submitLabel="Create" action={mkdir} ready={!!folderName.trim()} onClose={() => setNewFolder(false)}>
        <TextField label="Folder name" value={folderName} onValue={setFolderName} required autoFocus />
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
export function DownloadButton({ id, name, version, label }: { id: string; name: string; version?: number; label?: string }) {
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
    <Button small busy={act.busy} onClick={() => void act.run()} aria-label={`Download ${name}${version ? ` version ${version}` : ''}`}>
      <Icon name="download" /> {label ?? 'Download'}
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
function Uploader({ workspaceId, folderId, documentId, onDone }: { workspaceId: string; folderId?: string | undefined; documentId?: string; onDone: () => void }) {
  const [over, setOver] = useState(false);
  const [rows, setRows] = useState<UploadState[]>([]);
  const input = useRef<HTMLInputElement>(null);
  const queue = useRef<{ key: number; file: File }[]>([]);
  const running = useRef(false);
  const update = (key: number, p: Partial<UploadState>) => setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...p } : r)));

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
          const path = documentId ? `/documents/${encodeURIComponent(documentId)}/versions` : `/workspaces/${encodeURIComponent(workspaceId)}/documents`;
          // ids and the media type in the URL; the name in a header (URLs get logged), RFC 8187 encoded
          const query = documentId ? { type } : { folderId, type };
          const named: Record<string, string> = documentId ? {} : { 'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}` };
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
          const r = await send().catch((e: unknown) => (e instanceof ApiError && e.code === 'NETWORK' && !abort.signal.aborted ? send() : Promise.reject(e)));
          update(key, { status: 'done', sent: file.size });
          notify(`"${file.name}" uploaded (version ${r.version})`);
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
    setRows((rs) => [...rs.filter((r) => r.status === 'uploading' || r.status === 'queued' || r.status === 'failed'), ...added.map(({ key, file }) => ({ key, name: file.name, size: file.size, sent: 0, status: 'queued' as const }))]);
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
      <div>{documentId ? 'Drop a file here to upload it as a new version' : 'Drop files here to upload them to this folder'}</div>
      <input ref={input} id={`file-${documentId ?? 'new'}`} class="sr-only" type="file" multiple={!documentId} onChange={(e) => (add(e.currentTarget.files), (e.currentTarget.value = ''))} />
      <Button onClick={() => input.current?.click()}>
        <Icon name="upload" /> {documentId ? 'Choose a file' : 'Choose files'}
      </Button>
      {rows.length ? (
        <div class="uploads" aria-label="Uploads">
          {rows.map((r) => (
            <div class="upload-row" data-status={r.status} data-name={r.name}>
              <div class="row">
                <strong>{r.name}</strong>
                <span class="muted small">
                  {r.status === 'uploading' ? `${bytes(r.sent)} of ${bytes(r.size)}` : r.status === 'queued' ? 'waiting' : r.status === 'done' ? `${bytes(r.size)} · encrypted and stored` : r.status === 'cancelled' ? 'cancelled' : 'failed'}
                </span>
              </div>
              {r.status === 'uploading' || r.status === 'done' ? <Progress value={r.sent} max={r.size} label={`Upload of ${r.name}`} /> : null}
              {r.status === 'uploading' ? (
                <Button small variant="ghost" onClick={() => r.abort?.abort()}>
                  Cancel
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
    doc.set(await patch<Doc>(`/documents/${encodeURIComponent(docId)}`, { name: name.trim() }).then((d) => ({ ...doc.data!, ...d })));
    setRenaming(false);
  });
  const trash = useAction(async () => {
    await del(`/documents/${encodeURIComponent(docId)}`);
    doc.reload();
  });
  const restore = useAction(async () => {
    await post(`/documents/${encodeURIComponent(docId)}/restore`);
    doc.reload();
  });
  const back = { href: `#/workspaces/${encodeURIComponent(wsId)}`, label: ws.data?.name ?? 'Workspace' };
  if (doc.error) {
    return (
      <>
        <PageHeader title="Document" back={back} />
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
                <Icon name="restore" /> Restore
              </Button>
            ) : null
          ) : (
            <>
              <DownloadButton id={d.id} name={d.name} label="Download latest" />
              {writable ? <Button onClick={() => (setName(d.name), setRenaming(true))}>Rename</Button> : null}
              {writable ? (
                <Button variant="danger" busy={trash.busy} onClick={() => void trash.run()}>
                  <Icon name="trash" /> Move to trash
                </Button>
              ) : null}
            </>
          )
        }
      />
      <ErrorAlert error={trash.error ?? restore.error} />
      {d.trashedAt ? <Alert kind="warn" title="In the trash">This document was deleted on {new Date(d.trashedAt).toLocaleString()}. Restore it to use it again.</Alert> : null}
      <Card title="Details">
        <Facts
          items={[
            ['Size', bytes(d.size)],
            ['Latest version', `v${d.version}`],
            ['Created', <Time t={d.createdAt} />],
            ['Modified', <Time t={d.updatedAt} />],
            ['Tags', d.tags.length ? d.tags.join(', ') : '—'],
          ]}
        />
      </Card>
      {writable && !d.trashedAt ? <Uploader workspaceId={wsId} documentId={d.id} onDone={() => doc.reload()} /> : null}
      <div class="tabs" role="tablist" aria-label={t('records.tabs.label')}>
        <button type="button" role="tab" id="tab-versions" aria-selected={tab === 'versions'} aria-controls="panel-doc" class={tab === 'versions' ? 'tab active' : 'tab'} onClick={() => setTab('versions')}>
          {t('records.tabs.versions')}
        </button>
        <button type="button" role="tab" id="tab-history" aria-selected={tab === 'history'} aria-controls="panel-doc" class={tab === 'history' ? 'tab active' : 'tab'} onClick={() => setTab('history')}>
          {t('records.tabs.history')}
        </button>
      </div>
      <div role="tabpanel" id="panel-doc" aria-labelledby={tab === 'versions' ? 'tab-versions' : 'tab-history'}>
        {tab === 'history' ? (
          <Card title={t('records.history.title')}>
            <DocumentHistory id={d.id} />
          </Card>
        ) : (
          <Card title="Versions" class="flush">
        <div class="table-wrap">
          <table class="table" aria-label="Versions">
            <thead>
              <tr>
                <th>Version</th>
                <th class="num">Size</th>
                <th>Type</th>
                <th>Added</th>
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
                  <td class="actions">{d.trashedAt ? null : <DownloadButton id={d.id} name={d.name} version={v.version} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
          </Card>
        )}
      </div>
      <FormDialog open={renaming} title="Rename document" id="rename" submitLabel="Rename" action={rename} ready={!!name.trim()} onClose={() => setRenaming(false)}>
        <TextField label="Name" value={name} onValue={setName} required autoFocus />
      </FormDialog>
    </>
  );
}

export function MembersPage({ me, ws: wsId }: { me: Me; ws: string }) {
  const ws = useWorkspace(wsId);
  const members = useAsync((signal) => get<{ members: Member[] }>(`/workspaces/${encodeURIComponent(wsId)}/members`, { signal }), [wsId]);
  const [role, setRole] = useState('editor');
  const [picked, setPicked] = useState<Candidate | undefined>();
  const add = useAction(async () => {
    if (!picked) return;
    await put(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(picked.userId)}`, { role });
    notify(`${picked.username} added as ${role}`);
    setPicked(undefined);
    members.reload();
  });
  const change = useAction(async (m: Member, r: string) => {
    await put(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(m.userId)}`, { role: r });
    members.reload();
  });
  const remove = useAction(async (m: Member) => {
    await del(`/workspaces/${encodeURIComponent(wsId)}/members/${encodeURIComponent(m.userId)}`);
    notify(`${m.username} removed`);
    members.reload();
  });
  const back = { href: `#/workspaces/${encodeURIComponent(wsId)}`, label: ws.data?.name ?? 'Workspace' };
  if (ws.error) {
    return (
      <>
        <PageHeader title="Members" back={back} />
        <NoAccess error={ws.error} />
      </>
    );
  }
  const owner = ws.data?.role === 'owner';
  return (
    <>
      <PageHeader title="Members" back={back} description="Owners manage members; editors add and change documents; viewers read them." />
      <ErrorAlert error={members.error ?? change.error ?? remove.error} />
      {owner ? (
        <Card title="Add a member">
          <ErrorAlert error={add.error} />
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (picked) void add.run();
            }}
          >
            <MemberPicker wsId={wsId} picked={picked} onPick={setPicked} />
            <SelectField label="Role" value={role} onValue={setRole} options={['viewer', 'editor', 'owner']} />
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
                      {m.username} {m.userId === me.id ? <Badge kind="accent">you</Badge> : null}
                    </td>
                    <td>
                      {owner ? (
                        <select class="input" aria-label={`Role of ${m.username}`} value={m.role} onChange={(e) => void change.run(m, e.currentTarget.value)}>
                          {['viewer', 'editor', 'owner'].map((r) => (
                            <option value={r}>{r}</option>
                          ))}
                        </select>
                      ) : (
                        <Badge>{m.role}</Badge>
                      )}
                    </td>
                    <td>
                      <Time t={m.addedAt} />
                    </td>
                    <td class="actions">
                      {owner && m.userId !== me.id ? (
                        <Button small variant="ghost" onClick={() => void remove.run(m)}>
                          Remove
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
function MemberPicker({ wsId, picked, onPick }: { wsId: string; picked: Candidate | undefined; onPick: (c: Candidate | undefined) => void }) {
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
        <TextField label="Find a person" value={q} onValue={setQ} autoComplete="off" spellcheck={false} hint="Their exact user name or e-mail address." />
      </div>
      <Button small onClick={() => find()}>
        Find
      </Button>
      <ErrorAlert error={error} />
      {found ? (
        found.length ? (
          <ul class="candidates" aria-label="Matching people">
            {found.map((c) => (
              <li>
                <button type="button" class="btn btn-ghost btn-sm" data-candidate={c.username} disabled={c.member} onClick={() => onPick(c)}>
                  {c.username}
                  {c.member ? <span class="muted small"> — already a member</span> : null}
                </button>
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted small">Nobody with that exact user name or e-mail address.</p>
        )
      ) : null}
    </div>
  );
}
