import { get, post } from '../api.js';
import type { Me } from '../session.js';
import {
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Loading,
  PageHeader,
  Time,
  confirmAction,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { t } from '../i18n/index.js';

/**
 * The records manager's page (src/records/routes.ts): open requests that need a second records
 * manager, retention policies, legal holds and destruction certificates with their seal and RFC 3161
 * timestamp. Ids, dates and digests only: records managers see no names and no content.
 */
interface Scope {
  kind: string;
  id: string;
}
interface RequestRow {
  id: string;
  kind: string;
  scope: Scope | null;
  workspaceId: string;
  minDays: number | null;
  holdId: string | null;
  requestedBy: string;
  requestedAt: string;
  expiresAt: string;
  state: string;
}
interface PolicyRow {
  scope: Scope;
  workspaceId: string;
  minDays: number;
  setAt: string;
  requestedBy: string;
  approvedBy: string;
}
interface HoldRow {
  id: string;
  scope: Scope;
  workspaceId: string;
  placedAt: string;
  placedBy: string;
}
interface Overview {
  policies: PolicyRow[];
  holds: HoldRow[];
  requests: RequestRow[];
  /** user id → user name */
  people?: Record<string, string>;
}
interface CertificateRow {
  id: string;
  documentId: string;
  workspaceId: string;
  destroyedAt: string;
  sha256: string;
  signature: string | null;
  timestamp?: { state: 'none' | 'pending' | 'granted'; genTime?: string };
}

interface ReportRow {
  id: string;
  createdAt: string;
  actor: string;
  scope: { kind: string; id: string | null };
  ok: boolean;
  versions: number;
  failures: number;
  timestamp: { state: 'none' | 'pending' | 'granted'; genTime?: string };
}

function StampBadge({ ts }: { ts: { state: 'none' | 'pending' | 'granted'; genTime?: string } | undefined }) {
  if (ts?.state === 'granted')
    return (
      <Badge kind="ok">
        {t('records.manager.stamped')} <Time t={ts.genTime} />
      </Badge>
    );
  if (ts?.state === 'pending') return <Badge kind="warn">{t('records.manager.pending')}</Badge>;
  return <Badge>{t('records.manager.noTsa')}</Badge>;
}

const short = (id: string) => (id.length > 13 ? `${id.slice(0, 8)}…` : id);
const scopeText = (s: Scope | null) =>
  s
    ? `${t(`records.manager.scope.${s.kind === 'folder' ? 'folder' : s.kind === 'document' ? 'document' : 'workspace'}`)} ${short(s.id)}`
    : '—';

function requestText(r: RequestRow): string {
  if (r.kind === 'retention') return t('records.manager.request.retention', { days: r.minDays ?? 0 });
  if (r.kind === 'retention-remove') return t('records.manager.request.retentionRemove');
  return t('records.manager.request.releaseHold', { hold: short(r.holdId ?? '') });
}

export function RecordsPage({ me: _me }: { me: Me }) {
  const o = useAsync((signal) => get<Overview>('/records/retention', { signal }), []);
  const c = useAsync(
    (signal) => get<{ certificates: CertificateRow[] }>('/records/certificates?limit=100', { signal }),
    [],
  );
  const reports = useAsync(
    (signal) => get<{ reports: ReportRow[] }>('/records/integrity-reports?limit=50', { signal }),
    [],
  );
  const decide = useAction(async (r: RequestRow, approve: boolean) => {
    const ok = await confirmAction({
      title: approve ? t('records.manager.approveTitle') : t('records.manager.rejectTitle'),
      body: `${requestText(r)} — ${scopeText(r.scope)}`,
      confirmLabel: approve ? t('records.manager.approve') : t('records.manager.reject'),
      danger: approve && r.kind !== 'retention',
    });
    if (!ok) return;
    await post(`/records/requests/${r.id}/${approve ? 'approve' : 'reject'}`, {});
    notify(approve ? t('records.manager.approved') : t('records.manager.rejected'));
    o.reload();
  });
  const open = o.data?.requests.filter((r) => r.state === 'pending') ?? [];
  const who = (id: string) => o.data?.people?.[id] ?? short(id);
  return (
    <>
      <PageHeader title={t('records.manager.title')} description={t('records.manager.description')} />
      {o.loading && !o.data ? <Loading /> : null}
      <ErrorAlert error={o.error} />
      <ErrorAlert error={decide.error} />
      {o.data ? (
        <>
          <Card title={t('records.manager.requests')}>
            {open.length === 0 ? (
              <EmptyState title={t('records.manager.noRequests')} icon="check" />
            ) : (
              <table class="table" aria-label={t('records.manager.requests')}>
                <thead>
                  <tr>
                    <th>{t('records.manager.col.change')}</th>
                    <th>{t('records.manager.col.scope')}</th>
                    <th>{t('records.manager.col.requestedBy')}</th>
                    <th>{t('records.manager.col.expires')}</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {open.map((r) => (
                    <tr data-request={r.id}>
                      <td>{requestText(r)}</td>
                      <td>
                        <code>{scopeText(r.scope)}</code>
                      </td>
                      <td>{who(r.requestedBy)}</td>
                      <td>
                        <Time t={r.expiresAt} />
                      </td>
                      <td class="actions">
                        <Button variant="primary" small onClick={() => void decide.run(r, true)} busy={decide.busy}>
                          {t('records.manager.approve')}
                        </Button>{' '}
                        <Button small onClick={() => void decide.run(r, false)} busy={decide.busy}>
                          {t('records.manager.reject')}
                        </Button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
          <Card title={t('records.manager.policies')}>
            {o.data.policies.length === 0 ? (
              <EmptyState title={t('records.manager.noPolicies')} />
            ) : (
              <table class="table" aria-label={t('records.manager.policies')}>
                <thead>
                  <tr>
                    <th>{t('records.manager.col.scope')}</th>
                    <th class="num">{t('records.manager.col.minDays')}</th>
                    <th>{t('records.manager.col.since')}</th>
                    <th>{t('records.manager.col.by')}</th>
                  </tr>
                </thead>
                <tbody>
                  {o.data.policies.map((p) => (
                    <tr>
                      <td>
                        <code>{scopeText(p.scope)}</code>
                      </td>
                      <td class="num">{p.minDays}</td>
                      <td>
                        <Time t={p.setAt} />
                      </td>
                      <td>
                        {t('records.manager.twoPeople', { asked: who(p.requestedBy), approved: who(p.approvedBy) })}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
          <Card title={t('records.manager.holds')}>
            {o.data.holds.length === 0 ? (
              <EmptyState title={t('records.manager.noHolds')} />
            ) : (
              <table class="table" aria-label={t('records.manager.holds')}>
                <thead>
                  <tr>
                    <th>{t('records.manager.col.scope')}</th>
                    <th>{t('records.manager.col.since')}</th>
                    <th>{t('records.manager.col.by')}</th>
                  </tr>
                </thead>
                <tbody>
                  {o.data.holds.map((h) => (
                    <tr>
                      <td>
                        <code>{scopeText(h.scope)}</code>
                      </td>
                      <td>
                        <Time t={h.placedAt} />
                      </td>
                      <td>{who(h.placedBy)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
        </>
      ) : null}
      <Card title={t('records.manager.certificates')}>
        <p class="muted">{t('records.manager.certificatesHint')}</p>
        <ErrorAlert error={c.error} />
        {c.data && c.data.certificates.length === 0 ? <EmptyState title={t('records.manager.noCertificates')} /> : null}
        {c.data && c.data.certificates.length > 0 ? (
          <table class="table" aria-label={t('records.manager.certificates')}>
            <thead>
              <tr>
                <th>{t('records.manager.col.document')}</th>
                <th>{t('records.manager.col.destroyed')}</th>
                <th>{t('records.manager.col.sha256')}</th>
                <th>{t('records.manager.col.seal')}</th>
                <th>{t('records.manager.col.timestamp')}</th>
              </tr>
            </thead>
            <tbody>
              {c.data.certificates.map((x) => (
                <tr data-certificate={x.id}>
                  <td>
                    <code>{short(x.documentId)}</code>
                  </td>
                  <td>
                    <Time t={x.destroyedAt} />
                  </td>
                  <td>
                    <code>{x.sha256.slice(0, 16)}…</code>
                  </td>
                  <td>
                    {x.signature ? (
                      <Badge kind="ok">{t('records.manager.signed')}</Badge>
                    ) : (
                      <Badge kind="warn">{t('records.manager.unsigned')}</Badge>
                    )}
                  </td>
                  <td>
                    <StampBadge ts={x.timestamp} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Card>
      <Card title={t('records.manager.integrity')}>
        <p class="muted">{t('records.manager.integrityHint')}</p>
        <ErrorAlert error={reports.error} />
        {reports.data && reports.data.reports.length === 0 ? (
          <EmptyState title={t('records.manager.noReports')} />
        ) : null}
        {reports.data && reports.data.reports.length > 0 ? (
          <table class="table" aria-label={t('records.manager.integrity')}>
            <thead>
              <tr>
                <th>{t('records.manager.col.checked')}</th>
                <th>{t('records.manager.col.scope')}</th>
                <th class="num">{t('records.manager.col.versions')}</th>
                <th>{t('records.manager.col.result')}</th>
                <th>{t('records.manager.col.timestamp')}</th>
              </tr>
            </thead>
            <tbody>
              {reports.data.reports.map((r) => (
                <tr data-report={r.id}>
                  <td>
                    <Time t={r.createdAt} />
                  </td>
                  <td>
                    <code>
                      {r.scope.kind === 'all'
                        ? t('records.manager.scope.all')
                        : scopeText({ kind: r.scope.kind, id: r.scope.id ?? '' })}
                    </code>
                  </td>
                  <td class="num">{r.versions}</td>
                  <td>
                    {r.ok ? (
                      <Badge kind="ok">{t('records.manager.intact')}</Badge>
                    ) : (
                      <Badge kind="error">{t('records.manager.failed', { count: r.failures })}</Badge>
                    )}
                  </td>
                  <td>
                    <StampBadge ts={r.timestamp} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Card>
    </>
  );
}
