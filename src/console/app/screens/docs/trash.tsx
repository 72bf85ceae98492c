import { ApiError, describeError, post } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Alert, ErrorAlert, confirmAction, notify, useAction } from '../../ui.js';
import { enc, type Item } from './types.js';

/**
 * Purging (owners): a trashed document is destroyed at once (its data keys are destroyed: no
 * copy can be read again). Asked first in a dialog that says so; retention and legal holds are
 * the appliance's to enforce, and its 409 is shown as such (see PurgeError).
 */
export function usePurge(onDone: () => void) {
  return useAction(async (d: Item) => {
    const ok = await confirmAction({
      title: t('documents.purge.title', { name: d.name }),
      body: <p>{t('documents.purge.body', { name: d.name })}</p>,
      confirmLabel: t('documents.purge.confirm'),
      danger: true,
    });
    if (!ok) return;
    await post(`/documents/${enc(d.id)}/purge`);
    notify(t('documents.purge.done', { name: d.name }));
    onDone();
  });
}

/** A purge the records rules refuse (409: retention period, legal hold) says why, in words. */
export function PurgeError({ error }: { error: unknown }) {
  if (!(error instanceof ApiError) || error.status !== 409) return <ErrorAlert error={error} />;
  const code = error.code === 'LEGAL_HOLD' ? 'hold' : error.code === 'RETENTION_ACTIVE' ? 'retention' : 'other';
  return (
    <Alert kind="warn" title={t('documents.purge.refused')}>
      <p data-testid="purge-refused">{t(`documents.purge.why.${code}`, { message: describeError(error).text })}</p>
    </Alert>
  );
}
