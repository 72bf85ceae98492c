import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, describeError, get, upload, url } from '../../api.js';
import { activity } from '../../session.js';
import { t } from '../../i18n/index.js';
import { Button, ErrorAlert, Icon, Progress, bytes, notify, useAction } from '../../ui.js';
import { ConflictDialog, sameName, useConflict } from './conflict.js';
import type { UploadReply } from './types.js';

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
  receipt,
}: {
  id: string;
  name: string;
  version?: number;
  label?: string;
  /** the version's deposit receipt (a tar of the files an auditor checks with openssl) instead of its content */
  receipt?: boolean;
}) {
  const act = useAction(async () => {
    await get(`/documents/${encodeURIComponent(id)}`);
    const a = document.createElement('a');
    a.href = receipt
      ? url(`/documents/${encodeURIComponent(id)}/receipt`, { ...(version ? { version } : {}), format: 'tar' })
      : url(`/documents/${encodeURIComponent(id)}/content`, version ? { version } : undefined);
    a.download = receipt ? `receipt-${id}-v${version ?? 'latest'}.tar` : name;
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
        receipt
          ? t('documents.download.receiptLabel', { name, version: version ?? '' })
          : version
            ? t('documents.download.versionLabel', { name, version })
            : t('documents.download.label', { name })
      }
    >
      <Icon name="download" /> {label ?? (receipt ? t('documents.download.receipt') : t('documents.download.button'))}
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
export function Uploader({
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
  const conflict = useConflict();
  const update = (key: number, p: Partial<UploadState>) =>
    setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...p } : r)));

  const pump = async () => {
    if (running.current) return;
    running.current = true;
    try {
      for (let job = queue.current.shift(); job; job = queue.current.shift()) {
        const { key, file } = job;
        const abort = new AbortController();
        try {
          // a name already in this folder: a new version of that document, or both kept under a free name
          let versionOf = documentId;
          let name = file.name;
          if (!documentId) {
            const same = await sameName(workspaceId, folderId, file.name);
            if (same.existing) {
              const choice = await conflict.ask(file.name, same.free);
              if (choice === 'skip') {
                update(key, { status: 'cancelled' });
                continue;
              }
              if (choice === 'version') versionOf = same.existing.id;
              else name = same.free;
              update(key, { name });
            }
          }
          update(key, { status: 'uploading', abort });
          const type = file.type || 'application/octet-stream';
          const path = versionOf
            ? `/documents/${encodeURIComponent(versionOf)}/versions`
            : `/workspaces/${encodeURIComponent(workspaceId)}/documents`;
          // ids and the media type in the URL; the name in a header (URLs get logged), RFC 8187 encoded
          const query = versionOf ? { type } : { folderId, type };
          const named: Record<string, string> = versionOf
            ? {}
            : { 'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}` };
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
          notify(t('documents.upload.done', { name, version: r.version }));
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
        // files from the computer only: documents dragged within the list go to folders
        if (!e.dataTransfer?.types.includes('Files')) return;
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
      <ConflictDialog ask={conflict.dialog} />
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
