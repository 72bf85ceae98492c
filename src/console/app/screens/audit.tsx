import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { navigate, type Route } from '../router.js';
import { can, type Me, type User } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Loading,
  PageHeader,
  SelectField,
  TextField,
  useAction,
  useAsync,
} from '../ui.js';
import { formatDate, formatNumber, t } from '../i18n/index.js';
import { saveText } from '../download.js';
import { IntegrityCard } from './integrity.js';
import { MAX_RECORDS, fetchFiltered, toCsv, toJsonl, type AuditRecord, type ExportFormat } from './audit-export.js';

/** The audit trail (src/audit): filters, pages, and `audit verify`. */
interface Page {
  events: AuditRecord[];
  nextCursor: string | null;
}
export interface VerifyResult {
  ok: boolean;
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  prunedUpTo: number;
  checkpoints: { total: number; matched: number; macChecked: boolean };
  anchors: { total: number; matched: number };
  firstBadSeq?: number;
  problem?: { code: string; message: string };
}

const FILTERS = ['actor', 'action', 'target', 'outcome', 'from', 'to'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

/** the zone the table shows and the time filters are typed in: the browser's */
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const outcomeText = (o: string) =>
  o === 'success' || o === 'failure' || o === 'denied' ? t(`audit.outcomes.${o}`) : o;

/** datetime-local (the browser's time zone) → ISO UTC, as the API takes it */
const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);

export function AuditPage({ me, route }: { me: Me; route: Route }) {
  const applied: Filters = { actor: '', action: '', target: '', outcome: '', from: '', to: '' };
  for (const k of FILTERS) applied[k] = route.query.get(k) ?? '';
  const [form, setForm] = useState<Filters>(applied);
  const [pages, setPages] = useState<AuditRecord[][]>([]);
  const [next, setNext] = useState<string | null>(null);
  // the auditor reads the user directory: names are shown and accepted for user:<id> actors
  const directory = useAsync(
    async (signal) => (can(me, 'users:read') ? (await get<{ users: User[] }>('/users', { signal })).users : []),
    [me.id],
  );
  const names = new Map((directory.data ?? []).map((u) => [`user:${u.id}`, u.username]));
  const actorOf = (a: string) => {
    if (!a || a.includes(':') || a === 'anonymous' || a === 'system') return a || undefined;
    const u = directory.data?.find((x) => x.username.toLowerCase() === a.toLowerCase());
    return u ? `user:${u.id}` : a;
  };
  const query = (cursor?: string) => ({
    actor: actorOf(applied.actor),
    action: applied.action || undefined,
    target: applied.target || undefined,
    outcome: applied.outcome || undefined,
    from: toIso(applied.from),
    to: toIso(applied.to),
    limit: 50,
    cursor,
  });
  const first = useAsync(
    async (signal) => {
      if (directory.loading) return undefined;
      const r = await get<Page>('/audit/events', { signal, query: query() });
      setPages([]);
      setNext(r.nextCursor);
      return r;
    },
    [route.query.toString(), directory.loading],
  );
  const more = useAction(async () => {
    const r = await get<Page>('/audit/events', { query: query(next ?? undefined) });
    setPages((p) => [...p, r.events]);
    setNext(r.nextCursor);
  });
  // the filtered view as a file: every matching record, not only the pages shown
  const [truncated, setTruncated] = useState(false);
  const exporter = useAction(async (format: ExportFormat) => {
    const { records, truncated } = await fetchFiltered(query());
    setTruncated(truncated);
    const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
    if (format === 'csv') saveText(toCsv(records, names), `coffre-audit-${stamp}.csv`, 'text/csv;charset=utf-8');
    else saveText(toJsonl(records, names), `coffre-audit-${stamp}.jsonl`, 'application/x-ndjson');
  });
  const [verified, setVerified] = useState<VerifyResult | undefined>();
  const verify = useAction(async () => setVerified(await post<VerifyResult>('/audit/verify', null)));
  // while another filter loads, the rows of the previous one are not shown as if they matched it
  const events = first.loading ? [] : [...(first.data?.events ?? []), ...pages.flat()];
  const apply = (f: Filters) => {
    const q: Record<string, string | undefined> = {};
    for (const k of FILTERS) q[k] = f[k].trim() || undefined;
    navigate('/audit', q);
  };
  const active = FILTERS.some((k) => applied[k]);
  return (
    <>
      <PageHeader
        title={t('nav.audit')}
        description={t('audit.description')}
        actions={
          can(me, 'audit:verify') ? (
            <Button variant="primary" busy={verify.busy} onClick={() => void verify.run()}>
              {t('audit.verify')}
            </Button>
          ) : null
        }
      />
      <ErrorAlert error={verify.error} />
      {verified ? <VerifyAlert r={verified} /> : null}
      <Card class="flush">
        <form
          class="filters"
          aria-label={t('audit.filters')}
          onSubmit={(e) => {
            e.preventDefault();
            apply(form);
          }}
        >
          <TextField
            label={t('audit.col.actor')}
            value={form.actor}
            onValue={(v) => setForm({ ...form, actor: v })}
            placeholder={t('audit.ph.actor')}
          />
          <TextField
            label={t('audit.col.action')}
            value={form.action}
            onValue={(v) => setForm({ ...form, action: v })}
            placeholder={t('audit.ph.action')}
          />
          <TextField
            label={t('audit.col.target')}
            value={form.target}
            onValue={(v) => setForm({ ...form, target: v })}
            placeholder={t('audit.ph.target')}
          />
          <SelectField
            label={t('audit.col.outcome')}
            value={form.outcome}
            onValue={(v) => setForm({ ...form, outcome: v })}
            options={[
              { value: '', label: t('audit.any') },
              ...(['success', 'failure', 'denied'] as const).map((o) => ({
                value: o,
                label: t(`audit.outcomes.${o}`),
              })),
            ]}
          />
          <TextField
            label={t('audit.from')}
            type="datetime-local"
            value={form.from}
            onValue={(v) => setForm({ ...form, from: v })}
          />
          <TextField
            label={t('audit.to')}
            type="datetime-local"
            value={form.to}
            onValue={(v) => setForm({ ...form, to: v })}
          />
          <div class="row">
            <Button type="submit" variant="primary">
              {t('audit.apply')}
            </Button>
            {active ? (
              <Button
                onClick={() => {
                  const empty = { actor: '', action: '', target: '', outcome: '', from: '', to: '' };
                  setForm(empty);
                  apply(empty);
                }}
              >
                {t('audit.clear')}
              </Button>
            ) : null}
          </div>
        </form>
        <ErrorAlert error={first.error ?? more.error ?? exporter.error} />
        {truncated ? (
          <Alert kind="warn" title={t('audit.export.truncated', { max: formatNumber(MAX_RECORDS) })}>
            {t('audit.export.narrow')}
          </Alert>
        ) : null}
        {first.loading ? <Loading /> : null}
        {!first.loading && first.data && events.length === 0 ? (
          <EmptyState icon="shield" title={active ? t('audit.noMatch') : t('audit.empty')}>
            {active ? t('audit.widen') : undefined}
          </EmptyState>
        ) : null}
        {events.length ? (
          <div class="table-wrap">
            <table class="table" aria-label={t('audit.records')}>
              <thead>
                <tr>
                  <th class="num">#</th>
                  <th>{t('audit.col.timeIn', { zone: ZONE })}</th>
                  <th>{t('audit.col.action')}</th>
                  <th>{t('audit.col.actor')}</th>
                  <th>{t('audit.col.outcome')}</th>
                  <th>{t('audit.col.targets')}</th>
                  <th>{t('audit.col.source')}</th>
                </tr>
              </thead>
              <tbody>
                {events.map((e) => (
                  <tr data-action={e.action} data-outcome={e.outcome}>
                    <td class="num mono small">{e.seq}</td>
                    <td class="mono small">
                      <time dateTime={e.at} title={e.at}>
                        {formatDate(new Date(e.at), { dateStyle: 'short', timeStyle: 'medium' })}
                      </time>
                    </td>
                    <td class="mono small">{e.action}</td>
                    <td class="small">
                      {names.get(e.actor) ? <strong>{names.get(e.actor)}</strong> : null}
                      <div class="mono muted">{e.actor}</div>
                    </td>
                    <td>
                      <span class={`outcome-${e.outcome}`}>{outcomeText(e.outcome)}</span>
                      {e.reason ? <div class="muted small mono">{e.reason}</div> : null}
                    </td>
                    <td class="mono small">
                      {Object.entries(e.targets).map(([k, v]) => (
                        <div>
                          {k}: {v}
                        </div>
                      ))}
                    </td>
                    <td class="small">
                      {e.source?.ip ? <div class="mono">{e.source.ip}</div> : null}
                      {e.source?.requestId ? (
                        <div class="muted mono" title="request id">
                          {e.source.requestId.slice(0, 8)}
                        </div>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {events.length ? (
          <div class="pager">
            <span class="muted small">{t('audit.shown', { count: events.length })}</span>
            <div class="row" role="group" aria-label={t('audit.export.label')}>
              <Button small busy={exporter.busy} onClick={() => void exporter.run('csv')}>
                {t('audit.export.csv')}
              </Button>
              <Button small busy={exporter.busy} onClick={() => void exporter.run('jsonl')}>
                {t('audit.export.jsonl')}
              </Button>
            </div>
            {next ? (
              <Button small busy={more.busy} onClick={() => void more.run()}>
                {t('audit.older')}
              </Button>
            ) : (
              <span class="muted small">{t('audit.end')}</span>
            )}
          </div>
        ) : null}
      </Card>
      {can(me, 'audit:verify') ? <IntegrityCard /> : null}
    </>
  );
}

export function VerifyAlert({ r }: { r: VerifyResult }) {
  return r.ok ? (
    <Alert kind="ok" title={t('audit.intact.title')}>
      <p>
        {r.firstSeq !== null
          ? t('audit.intact.range', { count: r.records, first: r.firstSeq, last: r.lastSeq })
          : t('audit.intact.records', { count: r.records })}{' '}
        {r.checkpoints.macChecked
          ? t('audit.intact.checkpointsMac', { matched: r.checkpoints.matched, total: r.checkpoints.total })
          : t('audit.intact.checkpoints', { matched: r.checkpoints.matched, total: r.checkpoints.total })}{' '}
        {t('audit.intact.nothing')}
      </p>
      <Badge kind="ok">{t('audit.intact.badge')}</Badge>
    </Alert>
  ) : (
    <Alert kind="error" title={t('audit.altered.title')}>
      <p>
        {r.problem
          ? t('audit.altered.firstWith', {
              seq: r.firstBadSeq ?? '?',
              message: r.problem.message,
              code: r.problem.code,
            })
          : t('audit.altered.first', { seq: r.firstBadSeq ?? '?' })}{' '}
        {t('audit.altered.keep')}
      </p>
    </Alert>
  );
}
