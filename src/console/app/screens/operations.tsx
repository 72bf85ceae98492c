import { useEffect, useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { can, type Me } from '../session.js';
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
      <Alert kind="warn" title="Not allowed">
        <p data-testid="denied">
          Your role does not give access to the operations section. Admins, backup operators and auditors see it; ask an
          admin if you need it.
        </p>
      </Alert>
    </>
  );
}

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
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, [ms]);
}

// ------------------------------------------------------------------------------ dashboard

const RANGES = ['1h', '24h', '30d'] as const;
type Range = (typeof RANGES)[number];
const CHARTS: {
  title: string;
  names: string[];
  unit: string;
  pick?: (s: Series) => boolean;
  label: (s: Series) => string;
}[] = [
  {
    title: 'CPU',
    names: ['cpu_process_percent', 'cpu_system_percent'],
    unit: '%',
    label: (s) => (s.name === 'cpu_process_percent' ? 'Coffre (% of a core)' : 'machine (% of all cores)'),
  },
  { title: 'Memory', names: ['memory_system_used_percent'], unit: '%', label: () => 'machine memory used' },
  { title: 'Disk', names: ['disk_used_percent'], unit: '%', label: (s) => `${s.labels.volume} volume used` },
  { title: 'Requests', names: ['http_requests_per_second'], unit: '/s', label: (s) => s.labels.group ?? '' },
  {
    title: 'Latency (p95)',
    names: ['http_latency_ms'],
    unit: 'ms',
    pick: (s) => s.labels.stat === 'p95',
    label: (s) => s.labels.group ?? '',
  },
  { title: 'HSM latency', names: ['hsm_latency_ms'], unit: 'ms', label: () => 'HSM probe' },
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
  if (!can(me, 'monitoring:read')) return <Denied title="Operations" />;
  return (
    <>
      <PageHeader
        title="Operations"
        description="Health of each component, the last backup per target, open alerts and the appliance's load. Sampled every 15 seconds."
      />
      <div class="grid-2">
        <Card title="Components">
          <ErrorAlert error={health.error} />
          {health.loading && !health.data ? <Loading /> : null}
          <ul class="plain-list" aria-label="Components">
            {health.data?.components.map((c) => (
              <li data-component={c.name} data-ok={String(c.ok)}>
                <Badge kind={c.ok ? 'ok' : 'error'}>{c.ok ? 'up' : 'down'}</Badge> <strong>{c.name}</strong>
                {c.detail ? <span class="muted small"> — {c.detail}</span> : null}
              </li>
            ))}
          </ul>
        </Card>
        <Card title="Last backup per target">
          <ErrorAlert error={backups.error} />
          {backups.data && backups.data.targets.length === 0 ? (
            <EmptyState title="No backup target">A backup operator registers one (Operations › Backups).</EmptyState>
          ) : null}
          <ul class="plain-list" aria-label="Backup targets">
            {backups.data?.targets.map((t) => (
              <li data-target={t.target}>
                <strong>{t.target}</strong>{' '}
                {t.newestCompleteAt ? (
                  <>
                    newest complete <Time t={t.newestCompleteAt} />
                    {t.verifiedAt ? <Badge kind="ok">verified</Badge> : <Badge kind="warn">not verified</Badge>}
                  </>
                ) : (
                  <Badge kind="error">never backed up</Badge>
                )}
                {t.lastState && t.lastState !== 'complete' ? (
                  <span class="small">
                    {' '}
                    · last attempt <Time t={t.lastAttemptAt} />:{' '}
                    <Badge kind={t.lastState === 'failed' ? 'error' : 'neutral'}>{t.lastState}</Badge>
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        </Card>
      </div>
      <Card title="Open alerts" actions={<a href="#/operations/alerts">All alerts</a>}>
        <ErrorAlert error={alerts.error} />
        {alerts.data && alerts.data.alerts.length === 0 ? <EmptyState title="No open alert" icon="check" /> : null}
        {alerts.data && alerts.data.alerts.length ? (
          <AlertTable rows={alerts.data.alerts} me={me} onChange={() => alerts.reload()} />
        ) : null}
      </Card>
      <Card
        title="Load"
        actions={
          <div class="row" role="group" aria-label="Time range">
            {RANGES.map((r) => (
              <Button
                small
                variant={r === range ? 'primary' : 'secondary'}
                aria-pressed={r === range}
                onClick={() => setRange(r)}
              >
                {r}
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
                    title={c.title}
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
  title,
  unit,
  series,
}: {
  title: string;
  unit: string;
  series: { label: string; points: [number, number, number][] }[];
}) {
  const W = 320;
  const H = 120;
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    return (
      <figure class="chart" data-chart={title}>
        <figcaption>{title}</figcaption>
        <p class="muted small">No data yet for this range.</p>
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
    <figure class="chart" data-chart={title}>
      <figcaption>
        {title}{' '}
        <span class="muted small">
          (max {fmt(yMax)} {unit})
        </span>
      </figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        width="100%"
        height={H}
        role="img"
        aria-label={`${title}: ${series.map((s) => `${s.label} ${fmt(last(s) ?? 0)} ${unit}`).join(', ')}`}
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
            <span class={`chart-key chart-line-${i % 6}`} aria-hidden="true" /> {s.label}: {fmt(last(s) ?? 0)} {unit}
          </li>
        ))}
      </ul>
    </figure>
  );
}
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

// ------------------------------------------------------------------------------ alerts

function AlertTable({ rows, me, onChange }: { rows: AlertRow[]; me: Me; onChange: () => void }) {
  const act = useAction(async (id: string, verb: 'ack' | 'resolve') => {
    await post(`/monitoring/alerts/${id}/${verb}`);
    notify(verb === 'ack' ? 'Alert acknowledged: no more reminders.' : 'Alert resolved.');
    onChange();
  });
  const manage = can(me, 'monitoring:manage');
  return (
    <>
      <ErrorAlert error={act.error} />
      <div class="table-wrap">
        <table class="table" aria-label="Alerts">
          <thead>
            <tr>
              <th>Severity</th>
              <th>Alert</th>
              <th>Raised</th>
              <th>State</th>
              <th>Delivered</th>
              {manage ? <th>Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr data-alert={a.id} data-kind={a.kind} data-state={a.state}>
                <td>
                  <Badge kind={SEVERITY_KIND[a.severity]}>{a.severity}</Badge>
                </td>
                <td>
                  <code>{a.kind}</code>
                  <div>{a.message}</div>
                  {a.repeats ? (
                    <div class="muted small">
                      repeated {a.repeats} time(s), last <Time t={a.lastAt} />
                    </div>
                  ) : null}
                </td>
                <td>
                  <Time t={a.raisedAt} />
                </td>
                <td>
                  <Badge kind={a.state === 'open' ? 'error' : a.state === 'acknowledged' ? 'warn' : 'ok'}>
                    {a.state}
                  </Badge>
                  {a.acknowledgedBy ? <div class="muted small">acknowledged by {a.acknowledgedBy}</div> : null}
                  {a.resolvedBy ? (
                    <div class="muted small">
                      resolved by {a.resolvedBy === 'rule' ? 'the rule (condition cleared)' : a.resolvedBy}
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
                          Acknowledge
                        </Button>
                      ) : null}
                      {a.state !== 'resolved' ? (
                        <Button small onClick={() => void act.run(a.id, 'resolve')}>
                          Resolve
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
  if (!can(me, 'monitoring:read')) return <Denied title="Alerts" />;
  return (
    <>
      <PageHeader
        title="Alerts"
        description={`Every alert is stored, audited and sent to the configured channels (e-mail, syslog, webhook). ${can(me, 'monitoring:manage') ? 'Acknowledge one to stop reminders; resolve it once handled (alerts whose condition clears resolve themselves).' : 'Read-only for your role.'}`}
        actions={
          <div class="row" role="group" aria-label="Which alerts">
            <Button
              small
              variant={view === 'active' ? 'primary' : 'secondary'}
              aria-pressed={view === 'active'}
              onClick={() => setView('active')}
            >
              Open
            </Button>
            <Button
              small
              variant={view === 'resolved' ? 'primary' : 'secondary'}
              aria-pressed={view === 'resolved'}
              onClick={() => setView('resolved')}
            >
              History
            </Button>
          </div>
        }
      />
      <ErrorAlert error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      <Card class="flush">
        {list.data && list.data.alerts.length === 0 ? (
          <EmptyState title={view === 'active' ? 'No open alert' : 'No resolved alert yet'} icon="check" />
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
  if (!can(me, 'monitoring:read')) return <Denied title="Jobs" />;
  const lastOf = (job: string) => data.data?.runs.find((r) => r.job === job);
  return (
    <>
      <PageHeader
        title="Jobs"
        description="Every job of the appliance (scheduled, or started from the console or the CLI), its runs, their progress, outcome and error."
      />
      <ErrorAlert error={data.error} />
      {data.loading && !data.data ? <Loading /> : null}
      {data.data ? (
        <>
          <Card title="Jobs" class="flush">
            <div class="table-wrap">
              <table class="table" aria-label="Jobs">
                <thead>
                  <tr>
                    <th>Job</th>
                    <th>Schedule</th>
                    <th>Last run</th>
                  </tr>
                </thead>
                <tbody>
                  {data.data.jobs.map((j) => {
                    const r = lastOf(j.name);
                    return (
                      <tr data-job={j.name}>
                        <td class="mono">{j.name}</td>
                        <td class="mono">{j.schedule ?? <span class="muted">on demand</span>}</td>
                        <td>
                          {r ? (
                            <>
                              <Badge kind={OUTCOME_KIND[r.outcome] ?? 'neutral'}>{r.outcome}</Badge>{' '}
                              <Time t={r.startedAt} />
                            </>
                          ) : (
                            <span class="muted">never run</span>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </Card>
          <Card title="Runs" class="flush">
            {data.data.runs.length === 0 ? <EmptyState title="No run yet" /> : null}
            <div class="table-wrap">
              <table class="table" aria-label="Job runs">
                <thead>
                  <tr>
                    <th>Job</th>
                    <th>Started</th>
                    <th>By</th>
                    <th>Duration</th>
                    <th>Outcome</th>
                    <th>Progress / error</th>
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
                        {r.trigger} · {r.actor}
                      </td>
                      <td>{r.durationMs === null ? '—' : duration(r.durationMs)}</td>
                      <td>
                        <Badge kind={OUTCOME_KIND[r.outcome] ?? 'neutral'}>{r.outcome}</Badge>
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
