import { useState } from 'preact/hooks';
import { del, get, patch, post } from '../../api.js';
import type { Me } from '../../session.js';
import { t } from '../../i18n/index.js';
import { DocumentHistory } from '../history.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  ErrorAlert,
  Facts,
  FormDialog,
  Icon,
  Loading,
  PageHeader,
  TextField,
  Time,
  bytes,
  notify,
  useAction,
  useAsync,
  when,
} from '../../ui.js';
import { NoAccess, confirmTrash, useWorkspace } from './common.js';
import { MoveDialog, type Moving } from './move.js';
import { TagsDialog } from './tags.js';
import { DownloadButton, Uploader } from './transfer.js';
import { canWrite, enc, folderPath, type Doc, type Folder } from './types.js';
import { VersionsTable } from './versions.js';

export function DocumentPage({ ws: wsId, doc: docId }: { me: Me; ws: string; doc: string }) {
  const ws = useWorkspace(wsId);
  const doc = useAsync((signal) => get<Doc>(`/documents/${enc(docId)}`, { signal }), [docId]);
  const folders = useAsync(
    (signal) => get<{ folders: Folder[] }>(`/workspaces/${enc(wsId)}/folders`, { signal, query: { parentId: 'all' } }),
    [wsId],
  );
  const [renaming, setRenaming] = useState(false);
  const [tagging, setTagging] = useState(false);
  const [moving, setMoving] = useState<Moving | undefined>();
  const [moveFailed, setMoveFailed] = useState<unknown>();
  const [tab, setTab] = useState<'versions' | 'history'>('versions');
  const [name, setName] = useState('');
  const rename = useAction(async () => {
    doc.set({ ...doc.data!, ...(await patch<Doc>(`/documents/${enc(docId)}`, { name: name.trim() })) });
    setRenaming(false);
  });
  const trash = useAction(async () => {
    if (!(await confirmTrash(doc.data?.name ?? ''))) return;
    await del(`/documents/${enc(docId)}`);
    doc.reload();
  });
  const restore = useAction(async () => {
    await post(`/documents/${enc(docId)}/restore`);
    doc.reload();
  });
  const back = { href: `#/workspaces/${enc(wsId)}`, label: ws.data?.name ?? t('documents.workspace') };
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
  const writable = canWrite(ws.data) && ws.data?.state === 'active';
  const all = folders.data?.folders ?? [];
  const place = folderPath(all, d.folderId);
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
                <>
                  <Button onClick={() => (setName(d.name), setRenaming(true))}>{t('documents.rename.button')}</Button>
                  <Button onClick={() => setTagging(true)}>{t('documents.tagsEdit.button')}</Button>
                  <Button onClick={() => setMoving({ docs: [{ id: d.id, name: d.name }], folders: [] })}>
                    {t('documents.move.button')}
                  </Button>
                  <Button variant="danger" busy={trash.busy} onClick={() => void trash.run()}>
                    <Icon name="trash" /> {t('documents.trash.move')}
                  </Button>
                </>
              ) : null}
            </>
          )
        }
      />
      <ErrorAlert error={trash.error ?? restore.error ?? moveFailed} />
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
            [
              t('documents.folder.label'),
              place.length ? place.map((f) => f.name).join(' / ') : t('documents.move.root'),
            ],
            [t('keys.col.created'), <Time t={d.createdAt} />],
            [t('documents.col.modified'), <Time t={d.updatedAt} />],
            [
              t('documents.tags'),
              d.tags.length ? (
                <span data-testid="doc-tags">
                  {d.tags.map((x) => (
                    <Badge>{x}</Badge>
                  ))}
                </span>
              ) : (
                '—'
              ),
            ],
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
          <VersionsTable doc={d} writable={writable} onRestored={() => doc.reload()} />
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
      <TagsDialog
        doc={tagging ? d : undefined}
        onClose={() => setTagging(false)}
        onSaved={(tags) => {
          setTagging(false);
          doc.set({ ...d, tags });
          notify(t('documents.tagsEdit.saved', { name: d.name }));
        }}
      />
      <MoveDialog
        moving={moving}
        folders={all}
        onClose={() => setMoving(undefined)}
        onMoved={(to, fails) => {
          setMoving(undefined);
          setMoveFailed(fails[0]?.error);
          if (!fails.length) {
            const where = to === null ? t('documents.move.root') : (all.find((f) => f.id === to)?.name ?? '');
            notify(t('documents.move.done', { count: 1, folder: where }));
          }
          doc.reload();
        }}
      />
    </>
  );
}
