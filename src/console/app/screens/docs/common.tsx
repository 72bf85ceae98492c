import { ApiError, get } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Card, EmptyState, ErrorAlert, confirmAction, useAsync } from '../../ui.js';
import { enc, type Workspace } from './types.js';

/** a workspace role in the console's language */
export const wsRole = (r: string): string =>
  r === 'owner' || r === 'editor' || r === 'viewer' ? t(`documents.roles.${r}`) : r;

/** the workspace, or the not-found / not-a-member state */
export function useWorkspace(id: string) {
  return useAsync((signal) => get<Workspace>(`/workspaces/${enc(id)}`, { signal }), [id]);
}

export function NoAccess({ error }: { error: unknown }) {
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

/** moving to the trash says what it means: recoverable from the trash until it is purged */
export function confirmTrash(name: string): Promise<boolean> {
  return confirmAction({
    title: t('documents.trash.confirmTitle', { name }),
    body: <p>{t('documents.trash.confirmBody', { name })}</p>,
    confirmLabel: t('documents.trash.move'),
    danger: true,
  });
}
