import { useEffect, useState } from 'preact/hooks';
import { del, get, patch, post, url } from '../../api.js';
import { href, navigate, type Route } from '../../router.js';
import type { Me } from '../../session.js';
import { t } from '../../i18n/index.js';
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
  TextField,
  Time,
  bytes,
  confirmAction,
  notify,
  useAction,
  useAsync,
} from '../../ui.js';
import { BulkBar, Failures } from './bulk.js';
import { NoAccess, confirmTrash, useWorkspace, wsRole } from './common.js';
import { MoveDialog, dropTarget, moveAll, startDrag, type Moving } from './move.js';
import { TagsDialog } from './tags.js';
import { DownloadButton, Uploader } from './transfer.js';
import { PurgeError, usePurge } from './trash.js';
import { canWrite, enc, folderPath, type Folder, type Item, type Page } from './types.js';

/** A folder (or the root, id null) that takes documents and folders dropped on it. */
function DropLink({
  label,
  to,
  link,
  onDrop,
}: {
  label: string;
  to: string | null;
  link: string;
  onDrop: (to: string | null, ids: { docs: string[]; folders: string[] }) => void;
}) {
  const [over, setOver] = useState(false);
  return (
    <a
      href={link}
      class={over ? 'drop-over' : undefined}
      data-drop={to ?? 'root'}
      {...dropTarget((ids) => onDrop(to, ids), setOver)}
    >
      {label}
    </a>
  );
}

export function WorkspacePage({ ws: wsId, route }: { me: Me; ws: string; route: Route }) {
  const ws = useWorkspace(wsId);
  const folderId = route.query.get('folder') ?? undefined;
  const q = route.query.get('q') ?? '';
  const tag = route.query.get('tag') ?? '';
  const trash = route.query.get('view') === 'trash';
  const searching = !!(q || tag);
  const [search, setSearch] = useState(q);
  useEffect(() => setSearch(q), [q]);
  const folders = useAsync(
    (signal) => get<{ folders: Folder[] }>(`/workspaces/${enc(wsId)}/folders`, { signal, query: { parentId: 'all' } }),
    [wsId],
  );
  const [extra, setExtra] = useState<Item[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [failed, setFailed] = useState<{ name: string; error: unknown }[]>([]);
  const [moving, setMoving] = useState<Moving | undefined>();
  const [tagging, setTagging] = useState<Item | undefined>();
  const [renaming, setRenaming] = useState<Folder | undefined>();
  const [folderName, setFolderName] = useState('');
  const [newFolder, setNewFolder] = useState(false);
  // the search text and tag are confidential: they go in a POST body, never in a URL (URLs get logged);
  // the appliance folds case and accents ("evacuation" finds "Évacuation")
  const onePage = (cursor: string | undefined, signal?: AbortSignal) => {
    const path = `/workspaces/${enc(wsId)}/documents`;
    const f = {
      folderId: searching || trash ? undefined : (folderId ?? 'root'),
      trash: trash || undefined,
      limit: 100,
      cursor,
    };
    return searching
      ? post<Page>(`${path}/search`, { ...f, ...(q ? { q } : {}), ...(tag ? { tag } : {}) }, signal ? { signal } : {})
      : get<Page>(path, { ...(signal ? { signal } : {}), query: f });
  };
  // a search for common words answers in bounded steps, some with no match yet: follow those here
  const page = async (cursor: string | undefined, signal?: AbortSignal) => {
    let r = await onePage(cursor, signal);
    for (let i = 0; i < 50 && r.items.length === 0 && r.next; i++) r = await onePage(r.next, signal);
    return r;
  };
  const docs = useAsync(
    async (signal) => {
      const r = await page(undefined, signal);
      setExtra([]);
      setNext(r.next);
      return r;
    },
    [wsId, folderId, q, tag, trash],
  );
  useEffect(() => (setSelected(new Set()), setFailed([])), [wsId, folderId, q, tag, trash]);
  const usage = useAsync(
    (signal) =>
      get<{ usedBytes: number; quotaBytes: number | null; documents: number }>(`/workspaces/${enc(wsId)}/usage`, {
        signal,
      }),
    [wsId],
  );
  const refresh = () => {
    docs.reload();
    usage.reload();
    folders.reload();
    setSelected(new Set());
  };
  const more = useAction(async () => {
    const r = await page(next ?? undefined);
    setExtra((x) => [...x, ...r.items]);
    setNext(r.next);
  });
  const mkdir = useAction(async () => {
    await post(`/workspaces/${enc(wsId)}/folders`, { name: folderName.trim(), parentId: folderId ?? null });
    setNewFolder(false);
    setFolderName('');
    folders.reload();
  });
  const renameFolder = useAction(async () => {
    if (!renaming) return;
    await patch(`/folders/${enc(renaming.id)}`, { name: folderName.trim() });
    notify(t('documents.folder.renamed', { name: folderName.trim() }));
    setRenaming(undefined);
    setFolderName('');
    folders.reload();
  });
  const trashDoc = useAction(async (d: Item) => {
    if (!(await confirmTrash(d.name))) return;
    await del(`/documents/${enc(d.id)}`);
    notify(t('documents.trash.done', { name: d.name }));
    refresh();
  });
  const restore = useAction(async (d: Item) => {
    await post(`/documents/${enc(d.id)}/restore`);
    notify(t('documents.trash.restored', { name: d.name }));
    refresh();
  });
  const purge = usePurge(refresh);
  const rmdir = useAction(async (f: Folder) => {
    const ok = await confirmAction({
      title: t('documents.rmdir.title', { name: f.name }),
      body: <p>{t('documents.rmdir.body', { name: f.name })}</p>,
      confirmLabel: t('documents.rmdir.confirm'),
      danger: true,
    });
    if (!ok) return;
    await del(`/folders/${enc(f.id)}`);
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
  const subfolders = searching || trash ? [] : allFolders.filter((f) => f.parentId === (folderId ?? null));
  const items = [...(docs.data?.items ?? []), ...extra];
  const chosen = items.filter((d) => selected.has(d.id));
  const base = `/workspaces/${enc(wsId)}`;
  const goto = (query: Record<string, string | undefined>) => navigate(base, query);
  const seenTags = [...new Set([...items.flatMap((d) => d.tags), ...(tag ? [tag] : [])])].sort((a, b) =>
    a.localeCompare(b),
  );
  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const n = new Set(s);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });
  // dragging a selected row moves the whole selection; another row moves alone
  const dragIds = (d: Item) => (selected.has(d.id) ? [...selected] : [d.id]);
  const dropped = async (to: string | null, ids: { docs: string[]; folders: string[] }) => {
    if (!writable) return;
    const m: Moving = {
      docs: ids.docs
        .filter((id) => items.some((d) => d.id === id && d.folderId !== to))
        .map((id) => ({ id, name: items.find((d) => d.id === id)!.name })),
      folders: ids.folders
        .filter((id) => id !== to && allFolders.some((f) => f.id === id && f.parentId !== to))
        .map((id) => ({ id, name: allFolders.find((f) => f.id === id)!.name })),
    };
    if (!m.docs.length && !m.folders.length) return;
    const fails = await moveAll(m, to);
    afterMove(to, m, fails);
  };
  const afterMove = (to: string | null, m: Moving, fails: { name: string; error: unknown }[]) => {
    const done = m.docs.length + m.folders.length - fails.length;
    const where = to === null ? t('documents.move.root') : (allFolders.find((f) => f.id === to)?.name ?? '');
    if (done > 0) notify(t('documents.move.done', { count: done, folder: where }));
    setFailed(fails);
    setMoving(undefined);
    refresh();
  };
  const dropProps = (to: string | null) => ({
    onDrop: (t2: string | null, ids: { docs: string[]; folders: string[] }) => void dropped(t2, ids),
    to,
  });

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
            {w.role === 'owner' ? (
              <a
                class="btn btn-secondary"
                data-testid="export-workspace"
                href={url(`/workspaces/${enc(wsId)}/export`)}
                download={`coffre-export-${wsId}.tar`}
                title={t('documents.export.hint')}
              >
                <Icon name="download" /> {t('documents.export.button')}
              </a>
            ) : null}
            {writable && !trash ? (
              <Button onClick={() => (setFolderName(''), setNewFolder(true))}>
                <Icon name="folder" /> {t('documents.folder.new')}
              </Button>
            ) : null}
          </>
        }
      />
      {writable && !trash && !searching ? <Uploader workspaceId={wsId} folderId={folderId} onDone={refresh} /> : null}
      <Card class="flush">
        <div class="toolbar">
          <nav class="breadcrumbs" aria-label={t('documents.folder.label')}>
            {trash ? (
              <strong>{t('documents.trash.title')}</strong>
            ) : searching ? (
              <span>
                {q ? (
                  <>
                    {t('documents.search.results')} <strong>“{q}”</strong>{' '}
                  </>
                ) : null}
                {tag ? <Badge kind="accent">{t('documents.tagFilter.active', { tag })}</Badge> : null}
              </span>
            ) : (
              <>
                <DropLink label={t('documents.all')} link={href(base)} {...dropProps(null)} />
                {path.map((f) => (
                  <>
                    <span aria-hidden="true">/</span>
                    <DropLink label={f.name} link={href(base, { folder: f.id })} {...dropProps(f.id)} />
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
              goto({ q: search.trim() || undefined, tag: tag || undefined, view: trash ? 'trash' : undefined });
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
          {seenTags.length ? (
            <select
              class="input tag-filter"
              aria-label={t('documents.tagFilter.label')}
              value={tag}
              onChange={(e) =>
                goto({ q: q || undefined, tag: e.currentTarget.value || undefined, view: trash ? 'trash' : undefined })
              }
            >
              <option value="">{t('documents.tagFilter.any')}</option>
              {seenTags.map((x) => (
                <option value={x}>{x}</option>
              ))}
            </select>
          ) : null}
          {searching ? (
            <Button small onClick={() => goto({ folder: folderId, view: trash ? 'trash' : undefined })}>
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
        {!trash ? (
          <BulkBar
            workspaceId={wsId}
            selected={chosen}
            writable={writable}
            onMove={() => setMoving({ docs: chosen.map((d) => ({ id: d.id, name: d.name })), folders: [] })}
            onDone={refresh}
            onFailed={setFailed}
            onClear={() => setSelected(new Set())}
          />
        ) : null}
        <Failures failed={failed} />
        <ErrorAlert
          error={docs.error ?? trashDoc.error ?? restore.error ?? rmdir.error ?? more.error ?? folders.error}
        />
        {purge.error ? <PurgeError error={purge.error} /> : null}
        {docs.loading && !docs.data ? <Loading /> : null}
        {docs.data && items.length === 0 && subfolders.length === 0 ? (
          <EmptyState
            icon={trash ? 'trash' : searching ? 'search' : 'inbox'}
            title={
              trash ? t('documents.empty.trash') : searching ? t('documents.empty.search') : t('documents.empty.folder')
            }
          >
            {trash
              ? t('documents.empty.trashText')
              : searching
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
                  <th class="select">
                    {!trash && items.length ? (
                      <input
                        type="checkbox"
                        aria-label={t('documents.bulk.all')}
                        checked={chosen.length === items.length}
                        onChange={(e) =>
                          setSelected(e.currentTarget.checked ? new Set(items.map((d) => d.id)) : new Set())
                        }
                      />
                    ) : null}
                  </th>
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
                  <FolderRow
                    folder={f}
                    link={href(base, { folder: f.id })}
                    writable={writable}
                    onDrop={(ids) => void dropped(f.id, ids)}
                    onRename={() => (setFolderName(f.name), setRenaming(f))}
                    onMove={() => setMoving({ docs: [], folders: [{ id: f.id, name: f.name }] })}
                    onDelete={() => void rmdir.run(f)}
                  />
                ))}
                {items.map((d) => (
                  <tr
                    data-doc={d.name}
                    draggable={writable && !trash}
                    onDragStart={(e) => startDrag(e, { docs: dragIds(d), folders: [] })}
                  >
                    <td class="select">
                      {!trash ? (
                        <input
                          type="checkbox"
                          aria-label={t('documents.bulk.select', { name: d.name })}
                          checked={selected.has(d.id)}
                          onChange={(e) => toggle(d.id, e.currentTarget.checked)}
                        />
                      ) : null}
                    </td>
                    <td>
                      <span class="name-cell">
                        <Icon name="file" />
                        <a href={`#${base}/documents/${enc(d.id)}`}>{d.name}</a>
                        {d.tags.map((x) => (
                          <a
                            class="tag-link"
                            href={href(base, { tag: x, view: trash ? 'trash' : undefined })}
                            aria-label={t('documents.tagFilter.by', { tag: x })}
                          >
                            <Badge>{x}</Badge>
                          </a>
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
                        <>
                          {writable ? (
                            <Button small onClick={() => void restore.run(d)}>
                              <Icon name="restore" /> {t('documents.restore')}
                            </Button>
                          ) : null}
                          {writable && w.role === 'owner' ? (
                            <Button
                              small
                              variant="danger"
                              aria-label={t('documents.purge.label', { name: d.name })}
                              onClick={() => void purge.run(d)}
                            >
                              {t('documents.purge.button')}
                            </Button>
                          ) : null}
                        </>
                      ) : (
                        <>
                          <DownloadButton id={d.id} name={d.name} />
                          {writable ? (
                            <>
                              <Button
                                small
                                variant="ghost"
                                aria-label={t('documents.tagsEdit.label', { name: d.name })}
                                onClick={() => setTagging(d)}
                              >
                                {t('documents.tagsEdit.button')}
                              </Button>
                              <Button
                                small
                                variant="ghost"
                                aria-label={t('documents.move.label', { name: d.name })}
                                onClick={() => setMoving({ docs: [{ id: d.id, name: d.name }], folders: [] })}
                              >
                                {t('documents.move.button')}
                              </Button>
                              <Button
                                small
                                variant="ghost"
                                aria-label={t('documents.trash.label', { name: d.name })}
                                onClick={() => void trashDoc.run(d)}
                              >
                                <Icon name="trash" />
                              </Button>
                            </>
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
      <MoveDialog
        moving={moving}
        folders={allFolders}
        onClose={() => setMoving(undefined)}
        onMoved={(to, fails) => moving && afterMove(to, moving, fails)}
      />
      <TagsDialog
        doc={tagging}
        onClose={() => setTagging(undefined)}
        onSaved={() => {
          setTagging(undefined);
          docs.reload();
        }}
      />
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
      <FormDialog
        open={!!renaming}
        title={t('documents.folder.renameTitle', { name: renaming?.name ?? '' })}
        id="rename-folder"
        submitLabel={t('documents.rename.button')}
        action={renameFolder}
        ready={!!folderName.trim() && folderName.trim() !== renaming?.name}
        onClose={() => setRenaming(undefined)}
      >
        <TextField label={t('documents.folder.name')} value={folderName} onValue={setFolderName} required autoFocus />
      </FormDialog>
    </>
  );
}

function FolderRow({
  folder: f,
  link,
  writable,
  onDrop,
  onRename,
  onMove,
  onDelete,
}: {
  folder: Folder;
  link: string;
  writable: boolean;
  onDrop: (ids: { docs: string[]; folders: string[] }) => void;
  onRename: () => void;
  onMove: () => void;
  onDelete: () => void;
}) {
  const [over, setOver] = useState(false);
  return (
    <tr
      data-folder={f.name}
      class={over ? 'drop-over' : undefined}
      draggable={writable}
      onDragStart={(e) => startDrag(e, { docs: [], folders: [f.id] })}
      {...(writable ? dropTarget(onDrop, setOver) : {})}
    >
      <td class="select" />
      <td>
        <span class="name-cell">
          <Icon name="folder" />
          <a href={link}>{f.name}</a>
        </span>
      </td>
      <td class="num">—</td>
      <td class="num">—</td>
      <td>
        <Time t={f.updatedAt} />
      </td>
      <td class="actions">
        {writable ? (
          <>
            <Button
              small
              variant="ghost"
              aria-label={t('documents.folder.renameLabel', { name: f.name })}
              onClick={onRename}
            >
              {t('documents.rename.button')}
            </Button>
            <Button small variant="ghost" aria-label={t('documents.move.label', { name: f.name })} onClick={onMove}>
              {t('documents.move.button')}
            </Button>
            <Button small variant="ghost" aria-label={t('documents.rmdir.label', { name: f.name })} onClick={onDelete}>
              <Icon name="trash" />
            </Button>
          </>
        ) : null}
      </td>
    </tr>
  );
}
