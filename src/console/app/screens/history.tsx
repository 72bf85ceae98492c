import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { t, useLanguage } from '../i18n/index.js';
import { Badge, Button, EmptyState, ErrorAlert, Loading, Time, useAsync } from '../ui.js';

/** A document's history (GET /documents/{id}/history, src/records). Text: i18n/locales/<lang>/records.json. */
interface Entry {
  seq: number;
  at: string;
  actor: string;
  username: string | null;
  action: string;
  kind: 'read' | 'download' | 'change' | 'share' | 'delete' | 'other';
  outcome: string;
  reason: string | null;
  targets: Record<string, string>;
}
interface Page {
  scope: 'all' | 'own';
  entries: Entry[];
  nextCursor: string | null;
}

/** known actions have a sentence in the catalogue (records.history.action.<action with _ for .>) */
const KNOWN = new Set([
  'doc.create',
  'doc.write',
  'doc.update',
  'doc.move',
  'doc.restore',
  'doc.delete',
  'doc.purge',
  'doc.read',
  'doc.download',
  'doc.history',
  'workspace.member.add',
  'workspace.member.remove',
  'workspace.member.role',
]);
const actionText = (a: string) =>
  KNOWN.has(a) ? t(`records.history.action.${a.replace(/\./g, '_')}` as 'records.history.action.doc_read') : null;
const resultText = (o: string) =>
  ['success', 'denied', 'failure'].includes(o)
    ? t(`records.history.result.${o}` as 'records.history.result.success')
    : o;

const KIND_BADGE: Record<Entry['kind'], 'neutral' | 'ok' | 'warn' | 'error' | 'accent'> = {
  read: 'neutral',
  download: 'accent',
  change: 'ok',
  share: 'warn',
  delete: 'error',
  other: 'neutral',
};

export function DocumentHistory({ id }: { id: string }) {
  useLanguage();
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const [older, setOlder] = useState<Entry[]>([]);
  const page = useAsync(
    (signal) =>
      get<Page>(
        `/documents/${encodeURIComponent(id)}/history${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`,
        { signal },
      ),
    [id, cursor],
  );
  if (page.error) return <ErrorAlert error={page.error} />;
  if (!page.data) return <Loading />;
  const entries = [...older, ...page.data.entries];
  return (
    <>
      <p class="muted small">
        {page.data.scope === 'own' ? t('records.history.ownScope') : t('records.history.allScope')}
      </p>
      {entries.length === 0 ? (
        <EmptyState title={t('records.history.empty')} icon="inbox" />
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label={t('records.history.table')}>
            <thead>
              <tr>
                <th>{t('records.history.when')}</th>
                <th>{t('records.history.who')}</th>
                <th>{t('records.history.what')}</th>
                <th>{t('records.history.outcome')}</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.seq}>
                  <td>
                    <Time t={e.at} />
                  </td>
                  <td>{e.username ?? <span class="mono small">{e.actor}</span>}</td>
                  <td>
                    <Badge kind={KIND_BADGE[e.kind]}>{t(`records.history.kind.${e.kind}`)}</Badge>{' '}
                    {actionText(e.action) ?? <span class="mono small">{e.action}</span>}
                  </td>
                  <td>
                    {e.outcome === 'success' ? (
                      resultText('success')
                    ) : (
                      <Badge kind="error">{resultText(e.outcome)}</Badge>
                    )}
                    {e.reason ? <span class="mono small"> {e.reason}</span> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page.data.nextCursor ? (
        <Button
          onClick={() => {
            setOlder(entries);
            setCursor(page.data!.nextCursor!);
          }}
        >
          {t('records.history.more')}
        </Button>
      ) : null}
    </>
  );
}
