import { useEffect, useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { can, type Me } from '../session.js';
import { outcomeLabel, triggerLabel } from '../labels.js';
import { formatNumber, t } from '../i18n/index.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Loading,
  PageHeader,
  Progress,
  Time,
  duration,
  notify,
  useAction,
  useAsync,
} from '../ui.js';

/** The operations section (src/monitoring/routes.ts): dashboard, alerts, jobs. */
interface Component {
  name: string;
  ok: boolean;
  detail?: string;
  ms: number;
}
interface TargetState {
  target: string;
  newestCompleteAt: string | null;
  verifiedAt: string | null;
  lastAttemptAt: string | null;
  lastState: string | null;
}
export interface AlertRow {
  id: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  message: string;
  targets: Record<string, string>;
  state: 'open' | 'acknowledged' | 'resolved';
  raisedAt: string;
  lastAt: string;
  repeats: number;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  deliveries: Record<string, string>;
}
interface Series {
  name: string;
  labels: Record<string, string>;
  points: [number, number, number][];
}
interface JobRun {
  id: number;
  job: string;
  trigger: string;
  actor: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  outcome: string;
  progress: { phase: string; done?: number; total?: number; percent?: number; unit?: string } | null;
  error: string | null;
}

/** A page this account may not open says so: never an empty page that looks like "nothing here". */
function Denied({ title }: { title: string }) {
  return (
    <>
      <PageHeader title={title} />
      <Alert kind="warn" title={t('operations.denied.title')}>
        <p data-testid="denied">{t('operations.denied.text')}</p>
      </Alert>
    </>
  );
}

/** `v` when it is one of `known` (a value the catalogues name), else undefined: the stable id is shown as is */
function known<T extends string>(v: string | null | undefined, known: readonly T[]): T | undefined {
  return (known as readonly string[]).includes(v ?? '') ? (v as T) : undefined;
}
const COMPONENTS = ['database', 'keys', 'storage', 'audit-export'] as const;
const componentLabel = (v: string) => {
  const k = known(v, COMPONENTS);
  return k ? t(`operations.components.names.${k}`) : v;
};
const BACKUP_STATES = ['complete', 'failed', 'uploading', 'deleted', 'delete-pending', 'expired'] as const;
const backupStateLabel = (v: string) => {
  const k = known(v, BACKUP_STATES);
  return k ? t(`operations.targets.states.${k}`) : v;
};

const SEVERITY_KIND = { info: 'neutral', warning: 'warn', critical: 'error' } as const;
const OUTCOME_KIND: Record<string, 'ok' | 'error' | 'warn' | 'accent' | 'neutral'> = {
  succeeded: 'ok',
  failed: 'error',
  abandoned: 'warn',
  running: 'accent',
};

/** re-runs `reload` every `ms` while the page is open */
function useEvery(ms: number, reload: () => void): void {
  useEffect(() => {
    const timer = setInterval(reload, ms);
    return () => clearInterval(timer);
  }, [ms]);
}

// ------------------------------------------------------------------------------ dashboard

const RANGES = ['1h', '24h', '30d'] as const;
type Range = (typeof RANGES)[number];
const CHARTS: {
  id: 'cpu' | 'memory' | 'disk' | 'requests' | 'latency' | 'hsm';
  names: string[];
  unit: string;
  pick?: (s: Series) => boolean;
  label: (s: Series) => string;
}[] = [
  {
    id: 'cpu',
    names: ['cpu_process_percent', 'cpu_system_percent'],
    unit: '%',
    label: (s) =>
      s.name === 'cpu_process_percent' ? t('operations.charts.cpuProcess') : t('operations.charts.cpuSystem'),
  },
  { id: 'memory', names: ['memory_system_used_percent'], unit: '%', label: () => t('operations.charts.memoryUsed') },
  {
    id: 'disk',
    names: ['disk_used_percent'],
    unit: '%',
    label: (s) => t('operations.charts.diskUsed', { volume: s.labels.volume ?? '' }),
  },
  { id: 'requests', names: ['http_requests_per_second'], unit: '/s', label: (s) => s.labels.group ?? '' },
  {
    id: 'latency',
    names: ['http_latency_ms'],
    unit: 'ms',
    pick: (s) => s.labels.stat === 'p95',
    label: (s) => s.labels.group ?? '',
  },
  { id: 'hsm', names: ['hsm_latency_ms'], unit: 'ms', label: () => t('operations.charts.hsmProbe') },
];

export function OperationsPage({ me }: { me: Me }) {
  const [range, setRange] = useState<Range>('1h');
  const health = useAsync((signal) => get<{ components: Component[] }>('/monitoring/health', { signal }), []);
  const backups = useAsync((signal) => get<{ targets: TargetState[] }>('/monitoring/backups', { signal }), []);
  const alerts = useAsync(
    (signal) => get<{ alerts: AlertRow[] }>('/monitoring/alerts', { signal, query: { state: 'active', limit: '20' } }),
    [],
  );
  const names = [...new Set(CHARTS.flatMap((c) => c.names))].join(',');
  const metrics = useAsync(
    (signal) =>
      get<{ series: Series[]; resolutionMs: number }>('/monitoring/metrics', { signal, query: { range, names } }),
    [range],
  );
  useEvery(30_000, () => {
    health.reload();
    alerts.reload();
    metrics.reload();
  });
  if (!can(me, 'monitoring:read')) return <Denied title={t('operations.title')} />;
  return (
    <>
      <PageHeader title={t('operations.title')} description={t('operations.description')} />
      <div class="grid-2">
        <Card title={t('operations.components.title')}>
          <ErrorAlert error={health.error} />
          {health.loading && !health.data ? <Loading /> : null}
          <ul class="plain-list" aria-label={t('operations.components.title')}>
            {health.data?.components.map((c) => (
              <li data-component={c.name} data-ok={String(c.ok)}>
                <Badge kind={c.ok ? 'ok' : 'error'}>
                  {c.ok ? t('operations.components.up') : t('operations.components.down')}
                </Badge>{' '}
                <strong>{componentLabel(c.name)}</strong>
                {c.detail ? <span class="muted small"> — {c.detail}</span> : null}
              </li>
            ))}
          </ul>
        </Card>
        <Card title={t('operations.targets.title')}>
          <ErrorAlert error={backups.error} />
          {backups.data && backups.data.targets.length === 0 ? (
            <EmptyState title={t('operations.targets.none')}>{t('operations.targets.noneText')}</EmptyState>
          ) : null}
          <ul class="plain-list" aria-label={t('operations.targets.label')}>
            {backups.data?.targets.map((s) => (
              <li data-target={s.target}>
                <strong>{s.target}</strong>{' '}
                {s.newestCompleteAt ? (
                  <>
                    {t('operations.targets.newest')} <Time t={s.newestCompleteAt} />{' '}
                    {s.verifiedAt ? (
                      <Badge kind="ok">{t('operations.targets.verified')}</Badge>
                    ) : (
                      <Badge kind="warn">{t('operations.targets.notVerified')}</Badge>
                    )}
                  </>
                ) : (
                  <Badge kind="error">{t('operations.targets.never')}</Badge>
                )}
                {s.lastState && s.lastState !== 'complete' ? (
                  <span class="small">
                    {' '}
                    · {t('operations.targets.lastAttempt')} <Time t={s.lastAttemptAt} />{' '}
                    <Badge kind={s.lastState === 'failed' ? 'error' : 'neutral'}>{backupStateLabel(s.lastState)}</Badge>
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        </Card>
      </div>
      <Card title={t('operations.openAlerts')} actions={<a href="#/operations/alerts">{t('operations.allAlerts')}</a>}>
        <ErrorAlert error={alerts.error} />
        {alerts.data && alerts.data.alerts.length === 0 ? (
          <EmptyState title={t('operations.noOpenAlert')} icon="check" />
        ) : null}
        {alerts.data && alerts.data.alerts.length ? (
          <AlertTable rows={alerts.data.alerts} me={me} onChange={() => alerts.reload()} />
        ) : null}
      </Card>
      <Card
        title={t('operations.load')}
        actions={
          <div class="row" role="group" aria-label={t('operations.range')}>
            {RANGES.map((r) => (
              <Button
                small
                variant={r === range ? 'primary' : 'secondary'}
                aria-pressed={r === range}
                onClick={() => setRange(r)}
              >
                {t(`operations.ranges.${r}`)}
              </Button>
            ))}
          </div>
        }
      >
        <ErrorAlert error={metrics.error} />
        {metrics.loading && !metrics.data ? <Loading /> : null}
        <div class="charts">
          {metrics.data
            ? CHARTS.map((c) => {
                const series = metrics.data!.series.filter((s) => c.names.includes(s.name) && (c.pick?.(s) ?? true));
                return (
                  <Chart
                    id={c.id}
                    title={t(`operations.charts.${c.id}`)}
                    unit={c.unit}
                    series={series.map((s) => ({ label: c.label(s), points: s.points }))}
                  />
                );
              })
            : null}
        </div>
      </Card>
    </>
  );
}

/** A line chart in SVG (attributes only: the console's CSP forbids inline styles). */
function Chart({
  id,
  title,
  unit,
  series,
}: {
  id: string;
  title: string;
  unit: string;
  series: { label: string; points: [number, number, number][] }[];
}) {
  const W = 320;
  const H = 120;
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    return (
      <figure class="chart" data-chart={id}>
        <figcaption>{title}</figcaption>
        <p class="muted small">{t('operations.charts.noData')}</p>
      </figure>
    );
  }
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0]), x0 + 1);
  const yMax = Math.max(...all.map((p) => p[1]), unit === '%' ? 100 : 0) || 1;
  const xy = (p: [number, number, number]) =>
    `${(((p[0] - x0) / (x1 - x0)) * W).toFixed(1)},${(H - (p[1] / yMax) * H).toFixed(1)}`;
  const last = (s: (typeof series)[number]) => s.points[s.points.length - 1]?.[1];
  return (
    <figure class="chart" data-chart={id}>
      <figcaption>
        {title} <span class="muted small">{t('operations.charts.max', { value: fmt(yMax), unit })}</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        width="100%"
        height={H}
        role="img"
        aria-label={t('operations.charts.reading', {
          label: title,
          value: series.map((s) => `${s.label} ${fmt(last(s) ?? 0)}`).join(', '),
          unit,
        })}
        preserveAspectRatio="none"
      >
        <line x1="0" y1={H} x2={W} y2={H} class="chart-axis" />
        {series.map((s, i) =>
          s.points.length === 1 ? (
            <circle
              cx={xy(s.points[0]!).split(',')[0]}
              cy={xy(s.points[0]!).split(',')[1]}
              r="3"
              class={`chart-line chart-line-${i % 6}`}
              fill="none"
            />
          ) : (
            <polyline
              points={s.points.map(xy).join(' ')}
              class={`chart-line chart-line-${i % 6}`}
              fill="none"
              vector-effect="non-scaling-stroke"
            />
          ),
        )}
      </svg>
      <ul class="chart-legend">
        {series.map((s, i) => (
          <li>
            <span class={`chart-key chart-line-${i % 6}`} aria-hidden="true" />{' '}
            {t('operations.charts.reading', { label: s.label, value: fmt(last(s) ?? 0), unit })}
          </li>
        ))}
      </ul>
    </figure>
  );
}
const fmt = (n: number) => formatNumber(n, { maximumFractionDigits: n >= 100 ? 0 : n >= 10 ? 1 : 2 });

// ------------------------------------------------------------------------------ alerts

function AlertTable({ rows, me, onChange }: { rows: AlertRow[]; me: Me; onChange: () => void }) {
  const act = useAction(async (id: string, verb: 'ack' | 'resolve') => {
    await post(`/monitoring/alerts/${id}/${verb}`);
    notify(verb === 'ack' ? t('operations.alerts.acknowledged') : t('operations.alerts.resolved'));
    onChange();
  });
  const manage = can(me, 'monitoring:manage');
  return (
    <>
      <ErrorAlert error={act.error} />
      <div class="table-wrap">
        <table class="table" aria-label={t('operations.alerts.table')}>
          <thead>
            <tr>
              <th>{t('operations.alerts.col.severity')}</th>
              <th>{t('operations.alerts.col.alert')}</th>
              <th>{t('operations.alerts.col.raised')}</th>
              <th>{t('operations.alerts.col.state')}</th>
              <th>{t('operations.alerts.col.delivered')}</th>
              {manage ? <th>{t('common.actions')}</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr data-alert={a.id} data-kind={a.kind} data-state={a.state}>
                <td>
                  <Badge kind={SEVERITY_KIND[a.severity]}>{t(`operations.alerts.severity.${a.severity}`)}</Badge>
                </td>
                <td>
                  <code>{a.kind}</code>
                  <div>{a.message}</div>
                  {a.repeats ? (
                    <div class="muted small">
                      {t('operations.alerts.repeated', { count: a.repeats })} <Time t={a.lastAt} />
                    </div>
                  ) : null}
                </td>
                <td>
                  <Time t={a.raisedAt} />
                </td>
                <td>
                  <Badge kind={a.state === 'open' ? 'error' : a.state === 'acknowledged' ? 'warn' : 'ok'}>
                    {t(`operations.alerts.state.${a.state}`)}
                  </Badge>
                  {a.acknowledgedBy ? (
                    <div class="muted small">{t('operations.alerts.acknowledgedBy', { who: a.acknowledgedBy })}</div>
                  ) : null}
                  {a.resolvedBy ? (
                    <div class="muted small">
                      {a.resolvedBy === 'rule'
                        ? t('operations.alerts.resolvedByRule')
                        : t('operations.alerts.resolvedBy', { who: a.resolvedBy })}
                    </div>
                  ) : null}
                </td>
                <td class="small">
                  {Object.entries(a.deliveries).map(([c, s]) => (
                    <div>
                      {c}: <Badge kind={s === 'sent' ? 'ok' : s.startsWith('failed') ? 'error' : 'neutral'}>{s}</Badge>
                    </div>
                  ))}
                </td>
                {manage ? (
                  <td>
                    <div class="row">
                      {a.state === 'open' ? (
                        <Button small onClick={() => void act.run(a.id, 'ack')}>
                          {t('operations.alerts.acknowledge')}
                        </Button>
                      ) : null}
                      {a.state !== 'resolved' ? (
                        <Button small onClick={() => void act.run(a.id, 'resolve')}>
                          {t('operations.alerts.resolve')}
                        </Button>
                      ) : null}
                    </div>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function AlertsPage({ me }: { me: Me }) {
  const [view, setView] = useState<'active' | 'resolved'>('active');
  const list = useAsync(
    (signal) => get<{ alerts: AlertRow[] }>('/monitoring/alerts', { signal, query: { state: view, limit: '200' } }),
    [view],
  );
  useEvery(30_000, () => list.reload());
  if (!can(me, 'monitoring:read')) return <Denied title={t('operations.alerts.title')} />;
  return (
    <>
      <PageHeader
        title={t('operations.alerts.title')}
        description={`${t('operations.alerts.description')} ${can(me, 'monitoring:manage') ? t('operations.alerts.manage') : t('operations.alerts.readOnly')}`}
        actions={
          <div class="row" role="group" aria-label={t('operations.alerts.which')}>
            <Button
              small
              variant={view === 'active' ? 'primary' : 'secondary'}
              aria-pressed={view === 'active'}
              onClick={() => setView('active')}
            >
              {t('operations.alerts.open')}
            </Button>
            <Button
              small
              variant={view === 'resolved' ? 'primary' : 'secondary'}
              aria-pressed={view === 'resolved'}
              onClick={() => setView('resolved')}
            >
              {t('operations.alerts.history')}
            </Button>
          </div>
        }
      />
      <ErrorAlert error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      <Card class="flush">
        {list.data && list.data.alerts.length === 0 ? (
          <EmptyState
            title={view === 'active' ? t('operations.noOpenAlert') : t('operations.alerts.noResolved')}
            icon="check"
          />
        ) : null}
        {list.data && list.data.alerts.length ? (
          <AlertTable rows={list.data.alerts} me={me} onChange={() => list.reload()} />
        ) : null}
      </Card>
    </>
  );
}

// ------------------------------------------------------------------------------ jobs

export function JobsPage({ me }: { me: Me }) {
  const data = useAsync(
    (signal) =>
      get<{ jobs: { name: string; schedule: string | null }[]; runs: JobRun[] }>('/monitoring/jobs', {
        signal,
        query: { limit: '100' },
      }),
    [],
  );
  useEvery(5_000, () => data.reload());
  if (!can(me, 'monitoring:read')) return <Denied title={t('operations.jobs.title')} />;
  const lastOf = (job: string) => data.data?.runs.find((r) => r.job === job);
  return (
    <>
      <PageHeader title={t('operations.jobs.title')} description={t('operations.jobs.description')} />
      <ErrorAlert error={data.error} />
      {data.loading && !data.data ? <Loading /> : null}
      {data.data ? (
        <>
          <Card title={t('operations.jobs.table')} class="flush">
            <div class="table-wrap">
              <table class="table" aria-label={t('operations.jobs.table')}>
                <thead>
                  <tr>
                    <th>{t('operations.jobs.col.job')}</th>
                    <th>{t('operations.jobs.col.schedule')}</th>
                    <th>{t('operations.jobs.col.lastRun')}</th>
                  </tr>
                </thead>
                <tbody>
                  {data.data.jobs.map((j) => {
                    const r = lastOf(j.name);
                    return (
                      <tr data-job={j.name}>
                        <td class="mono">{j.name}</td>
                        <td class="mono">{j.schedule ?? <span class="muted">{t('operations.jobs.onDemand')}</span>}</td>
                        <td>
                          {r ? (
                            <>
                              <Badge kind={OUTCOME_KIND[r.outcome] ?? 'neutral'}>{outcomeLabel(r.outcome)}</Badge>{' '}
                              <Time t={r.startedAt} />
                            </>
                          ) : (
                            <span class="muted">{t('operations.jobs.neverRun')}</span>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </Card>
          <Card title={t('operations.jobs.runs')} class="flush">
            {data.data.runs.length === 0 ? <EmptyState title={t('operations.jobs.noRun')} /> : null}
            <div class="table-wrap">
              <table class="table" aria-label={t('operations.jobs.runsTable')}>
                <thead>
                  <tr>
                    <th>{t('operations.jobs.col.job')}</th>
                    <th>{t('operations.jobs.col.started')}</th>
                    <th>{t('operations.jobs.col.by')}</th>
                    <th>{t('operations.jobs.col.duration')}</th>
                    <th>{t('operations.jobs.col.outcome')}</th>
                    <th>{t('operations.jobs.col.progress')}</th>
                  </tr>
                </thead>
                <tbody>
                  {data.data.runs.map((r) => (
                    <tr data-run={r.id} data-outcome={r.outcome}>
                      <td class="mono">{r.job}</td>
                      <td>
                        <Time t={r.startedAt} />
                      </td>
                      <td class="small">
                        {triggerLabel(r.trigger)} · {r.actor}
                      </td>
                      <td>{r.durationMs === null ? '—' : duration(r.durationMs)}</td>
                      <td>
                        <Badge kind={OUTCOME_KIND[r.outcome] ?? 'neutral'}>{outcomeLabel(r.outcome)}</Badge>
                      </td>
                      <td class="small">
                        {r.outcome === 'running' && r.progress ? (
                          <Progress value={r.progress.percent ?? 0} max={100} label={r.progress.phase} />
                        ) : null}
                        {r.error ? <span class="error-text">{r.error}</span> : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        </>
      ) : null}
    </>
  );
}
