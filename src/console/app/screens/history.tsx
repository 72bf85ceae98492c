import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { Badge, Button, EmptyState, ErrorAlert, Loading, Time, useAsync } from '../ui.js';

/** A document's history (GET /documents/{id}/history, src/records). The console's text for it lives here. */
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

const TEXT = {
  ownScope: 'You see your own actions on this document. Workspace owners see everyone’s.',
  allScope: 'Everyone’s actions on this document, and changes to who can access its workspace.',
  empty: 'Nothing recorded yet.',
  more: 'Older entries',
  columns: { when: 'When', who: 'Who', what: 'What', outcome: 'Outcome' },
  kind: { read: 'Viewed', download: 'Downloaded', change: 'Changed', share: 'Access changed', delete: 'Deleted', other: 'Other' } as Record<Entry['kind'], string>,
  action: {
    'doc.create': 'created it',
    'doc.write': 'added a version',
    'doc.update': 'edited its details',
    'doc.move': 'moved it',
    'doc.restore': 'restored it from the trash',
    'doc.delete': 'moved it to the trash',
    'doc.purge': 'destroyed it',
    'doc.read': 'viewed its details',
    'doc.download': 'downloaded it',
    'doc.history': 'viewed its history',
    'workspace.member.add': 'gave someone access to the workspace',
    'workspace.member.remove': 'removed someone from the workspace',
    'workspace.member.role': 'changed someone’s role in the workspace',
  } as Record<string, string>,
  outcome: { success: 'done', denied: 'refused', failure: 'failed' } as Record<string, string>,
};

const KIND_BADGE: Record<Entry['kind'], 'neutral' | 'ok' | 'warn' | 'error' | 'accent'> = { read: 'neutral', download: 'accent', change: 'ok', share: 'warn', delete: 'error', other: 'neutral' };

export function DocumentHistory({ id }: { id: string }) {
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const [older, setOlder] = useState<Entry[]>([]);
  const page = useAsync((signal) => get<Page>(`/documents/${encodeURIComponent(id)}/history${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, { signal }), [id, cursor]);
  if (page.error) return <ErrorAlert error={page.error} />;
  if (!page.data) return <Loading />;
  const entries = [...older, ...page.data.entries];
  return (
    <>
      <p class="muted small">{page.data.scope === 'own' ? TEXT.ownScope : TEXT.allScope}</p>
      {entries.length === 0 ? (
        <EmptyState title={TEXT.empty} icon="inbox" />
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="History">
            <thead>
              <tr>
                <th>{TEXT.columns.when}</th>
                <th>{TEXT.columns.who}</th>
                <th>{TEXT.columns.what}</th>
                <th>{TEXT.columns.outcome}</th>
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
                    <Badge kind={KIND_BADGE[e.kind]}>{TEXT.kind[e.kind]}</Badge> {TEXT.action[e.action] ?? <span class="mono small">{e.action}</span>}
                  </td>
                  <td>
                    {e.outcome === 'success' ? TEXT.outcome.success : <Badge kind="error">{TEXT.outcome[e.outcome] ?? e.outcome}</Badge>}
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
          {TEXT.more}
        </Button>
      ) : null}
    </>
  );
}
