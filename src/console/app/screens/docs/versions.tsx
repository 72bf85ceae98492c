import { post } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Button, Card, ErrorAlert, Icon, Time, bytes, confirmAction, notify, useAction } from '../../ui.js';
import { DownloadButton } from './transfer.js';
import { enc, type Doc } from './types.js';

/**
 * A document's versions, newest first, each with its author (user name, else the actor id) and,
 * for editors, "Restore": that version's content becomes a new version after a dialog that says
 * so (nothing is overwritten; the appliance audits it as doc.version.restore).
 */
export function VersionsTable({ doc, writable, onRestored }: { doc: Doc; writable: boolean; onRestored: () => void }) {
  const restore = useAction(async (version: number) => {
    const ok = await confirmAction({
      title: t('documents.versions.restoreTitle', { version, name: doc.name }),
      body: <p>{t('documents.versions.restoreBody', { version, next: doc.version + 1, name: doc.name })}</p>,
      confirmLabel: t('documents.versions.restoreConfirm', { version }),
    });
    if (!ok) return;
    const r = await post<{ version: number }>(`/documents/${enc(doc.id)}/versions/${version}/restore`);
    notify(t('documents.versions.restored', { version, next: r.version }));
    onRestored();
  });
  return (
    <Card title={t('records.tabs.versions')} class="flush">
      <ErrorAlert error={restore.error} />
      <div class="table-wrap">
        <table class="table" aria-label={t('records.tabs.versions')}>
          <thead>
            <tr>
              <th>{t('documents.col.version')}</th>
              <th class="num">{t('documents.col.size')}</th>
              <th>{t('documents.col.type')}</th>
              <th>{t('documents.col.added')}</th>
              <th>{t('documents.col.author')}</th>
              <th>SHA-256</th>
              <th class="actions">
                <span class="sr-only">{t('common.actions')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {doc.versions.map((v) => (
              <tr data-version={v.version}>
                <td>v{v.version}</td>
                <td class="num">{bytes(v.size)}</td>
                <td class="mono small">{v.mediaType}</td>
                <td>
                  <Time t={v.createdAt} />
                </td>
                <td data-testid="version-author">{v.createdByName ?? <span class="mono small">{v.createdBy}</span>}</td>
                <td class="mono small" title={v.sha256}>
                  {v.sha256.slice(0, 16)}…
                </td>
                <td class="actions">
                  {doc.trashedAt ? null : (
                    <>
                      <DownloadButton id={doc.id} name={doc.name} version={v.version} />{' '}
                      <DownloadButton id={doc.id} name={doc.name} version={v.version} receipt />
                    </>
                  )}
                  {writable && !doc.trashedAt && v.version !== doc.version ? (
                    <Button
                      small
                      busy={restore.busy}
                      aria-label={t('documents.versions.restoreLabel', { version: v.version })}
                      onClick={() => void restore.run(v.version)}
                    >
                      <Icon name="restore" /> {t('documents.restore')}
                    </Button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}
