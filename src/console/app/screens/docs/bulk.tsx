import { del, describeError, get, url } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Alert, Button, ErrorAlert, Icon, confirmAction, notify, useAction } from '../../ui.js';
import { enc, type Item } from './types.js';

/** most documents one zip holds (the appliance's limit: their ids travel in the download's URL) */
export const ZIP_MAX = 100;

/** The failures of a bulk action, by name, each with the appliance's reason. */
export function Failures({ failed }: { failed: { name: string; error: unknown }[] }) {
  if (!failed.length) return null;
  return (
    <Alert kind="error" title={t('documents.bulk.failed', { count: failed.length })}>
      <ul data-testid="bulk-failures">
        {failed.map((f) => (
          <li>
            <strong>{f.name}</strong> — {describeError(f.error).text}
          </li>
        ))}
      </ul>
    </Alert>
  );
}

/**
 * What to do with the selected documents: move (the move dialog), trash (one dialog for all, then
 * one request each: retention or a legal hold may refuse some, which are listed), download as one
 * zip the appliance streams (a single download the browser saves like any other: several
 * automatic downloads would be blocked or asked about one by one).
 */
export function BulkBar({
  workspaceId,
  selected,
  writable,
  onMove,
  onDone,
  onFailed,
  onClear,
}: {
  workspaceId: string;
  selected: Item[];
  writable: boolean;
  onMove: () => void;
  onDone: () => void;
  onFailed: (failed: { name: string; error: unknown }[]) => void;
  onClear: () => void;
}) {
  const count = selected.length;
  const trash = useAction(async () => {
    const ok = await confirmAction({
      title: t('documents.bulk.trashTitle', { count }),
      body: (
        <>
          <p>{t('documents.bulk.trashBody', { count })}</p>
          <ul>
            {selected.slice(0, 10).map((d) => (
              <li>{d.name}</li>
            ))}
            {count > 10 ? <li>{t('documents.bulk.andMore', { count: count - 10 })}</li> : null}
          </ul>
        </>
      ),
      confirmLabel: t('documents.bulk.trashConfirm', { count }),
      danger: true,
    });
    if (!ok) return;
    const failed: { name: string; error: unknown }[] = [];
    for (const d of selected)
      await del(`/documents/${enc(d.id)}`).catch((error: unknown) => failed.push({ name: d.name, error }));
    if (count - failed.length > 0) notify(t('documents.bulk.trashed', { count: count - failed.length }));
    onFailed(failed);
    onDone();
  });
  const download = useAction(async () => {
    await get(`/workspaces/${enc(workspaceId)}`); // an expired session signs in again instead of saving an error
    const a = document.createElement('a');
    a.href = url(`/workspaces/${enc(workspaceId)}/documents/archive`, { ids: selected.map((d) => d.id).join(',') });
    a.download = '';
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  if (count === 0) return null;
  return (
    <div class="bulk-bar" role="region" aria-label={t('documents.bulk.label')}>
      <strong>{t('documents.bulk.selected', { count })}</strong>
      {writable ? (
        <Button small onClick={onMove}>
          <Icon name="folder" /> {t('documents.move.button')}
        </Button>
      ) : null}
      <Button small busy={download.busy} disabled={count > ZIP_MAX} onClick={() => void download.run()}>
        <Icon name="download" /> {t('documents.bulk.zip')}
      </Button>
      {writable ? (
        <Button small variant="danger" busy={trash.busy} onClick={() => void trash.run()}>
          <Icon name="trash" /> {t('documents.trash.move')}
        </Button>
      ) : null}
      <Button small variant="ghost" onClick={onClear}>
        {t('documents.bulk.clear')}
      </Button>
      {count > ZIP_MAX ? <span class="muted small">{t('documents.bulk.zipMax', { max: ZIP_MAX })}</span> : null}
      <ErrorAlert error={trash.error ?? download.error} />
    </div>
  );
}
