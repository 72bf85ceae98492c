import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { X509Certificate } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Kysely } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { routeGroup } from '../http/groups.js';
import type { MetricStore, Sample } from './metric-store.js';

/** One line per metric: docs/monitoring.md "Metrics" repeats this table. */
export const METRIC_HELP: Record<string, string> = {
  cpu_process_percent: 'CPU used by the Coffre process, % of one core',
  cpu_system_percent: 'CPU used by the whole machine, % of all cores',
  memory_rss_bytes: 'resident set size of the process',
  memory_heap_used_bytes: 'V8 heap in use',
  memory_heap_total_bytes: 'V8 heap reserved',
  memory_system_total_bytes: 'physical memory of the machine',
  memory_system_available_bytes: 'memory available to new work (MemAvailable)',
  memory_system_used_percent: '100 - available / total',
  disk_total_bytes: 'size of the volume holding {volume} (data: the data dir, blobs: the blob store)',
  disk_free_bytes: 'space available to Coffre on that volume',
  disk_used_percent: '100 - available / total, per volume',
  event_loop_lag_ms: 'event-loop delay over the interval, {stat} = p50 | p99 | max',
  http_requests_per_second: 'requests answered per second, per route {group}',
  http_errors_per_second: 'requests answered with 5xx per second, per route {group}',
  http_latency_ms: 'response time, per route {group}, {stat} = p50 | p95 | p99',
  hsm_up: '1 when the last HSM probe succeeded, else 0',
  hsm_latency_ms: 'duration of the HSM probe (a KEK lookup)',
  job_runs_24h: 'job runs that ended in the last 24 h, per {job} and {outcome}',
  job_last_duration_seconds: 'duration of the last finished run, per {job}',
  backup_newest_age_seconds: 'age of the newest complete backup, per {target}',
  backup_drill_age_seconds: 'age of the newest successful restore drill',
  tls_certificate_expiry_days: 'days until the HTTPS certificate expires',
  sessions_active: 'signed-in sessions not ended, expired or idle',
  audit_export_lag_records: 'audit records not yet delivered to the syslog collector',
  audit_export_lag_seconds:
    'age of the oldest audit record not yet delivered to the syslog collector (0 when none waits)',
  clock_offset_seconds:
    "this machine's clock minus the time of the configured HTTPS peers (median of their Date headers)",
  clock_peers_reached: 'configured clock peers that answered the last check',
  backup_target_up: '1 when the backup {target} answered the last space check, else 0',
  backup_target_total_bytes: 'size of the volume holding the backup {target}',
  backup_target_free_bytes: 'space available at the backup {target}',
  backup_target_used_percent: '100 - available / total at the backup {target}',
  alerts_open: 'open or acknowledged alerts, per {severity}',
};

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
const RESERVOIR = 5000;

/**
 * Requests per route group: a live Prometheus counter and histogram, plus per-interval figures
 * (rate, 5xx rate, percentiles) for the database. Installed as an onResponse hook on the root.
 */
export class HttpStats {
  private cur = new Map<string, { n: number; errors: number; lat: number[] }>();
  private since = performance.now();
  private readonly counter: Counter<'group' | 'code'>;
  private readonly histogram: Histogram<'group'>;

  constructor(registry: Registry) {
    this.counter = new Counter({
      name: 'coffre_http_requests_total',
      help: 'requests answered, per route group and status class',
      labelNames: ['group', 'code'],
      registers: [registry],
    });
    this.histogram = new Histogram({
      name: 'coffre_http_request_duration_seconds',
      help: 'response time per route group',
      labelNames: ['group'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (req, reply) => {
      this.observe(routeGroup(req.method, req.routeOptions.url), reply.statusCode, reply.elapsedTime);
    });
  }

  observe(group: string, status: number, ms: number): void {
    this.counter.inc({ group, code: `${Math.floor(status / 100)}xx` });
    this.histogram.observe({ group }, ms / 1000);
    const g = this.cur.get(group) ?? { n: 0, errors: 0, lat: [] };
    g.n += 1;
    if (status >= 500) g.errors += 1;
    // reservoir sampling keeps percentiles honest under a flood without unbounded memory
    if (g.lat.length < RESERVOIR) g.lat.push(ms);
    else {
      const i = Math.floor(Math.random() * g.n);
      if (i < RESERVOIR) g.lat[i] = ms;
    }
    this.cur.set(group, g);
  }

  /** the figures since the last call */
  take(): Sample[] {
    const secs = Math.max(0.001, (performance.now() - this.since) / 1000);
    this.since = performance.now();
    const out: Sample[] = [];
    for (const [group, g] of this.cur) {
      const lat = g.lat.sort((a, b) => a - b);
      out.push(
        { name: 'http_requests_per_second', labels: { group }, value: g.n / secs },
        { name: 'http_errors_per_second', labels: { group }, value: g.errors / secs },
      );
      for (const p of [50, 95, 99])
        out.push({ name: 'http_latency_ms', labels: { group, stat: `p${p}` }, value: pct(lat, p) });
    }
    this.cur = new Map();
    return out;
  }
}

export interface SamplerOptions {
  db: Kysely<MonitoringSchema>;
  clock: Clock;
  log: Logger;
  store: MetricStore;
  registry: Registry;
  http: HttpStats;
  intervalMs: number;
  /** volumes whose space is measured, e.g. data → the data dir, blobs → storage.dir */
  volumes: readonly { name: string; dir: string }[];
  /** a real HSM operation (KEK lookup); absent = not measured */
  hsmProbe?: () => Promise<unknown>;
  /** the HTTPS certificate (PEM) */
  certFile?: string;
  sessionIdleMs: number;
  /** space at each registered backup target (BackupService.targetSpace); measured every `targetSpaceIntervalMs` */
  targetSpace?: () => Promise<readonly TargetSpace[]>;
  targetSpaceIntervalMs?: number;
  /** measures this machine's clock against HTTPS peers (./clock.ts); every `clockIntervalMs` */
  clockOffset?: () => Promise<{ offsetMs: number | null; reached: number }>;
  clockIntervalMs?: number;
}

/** one backup target's space, or why it could not be measured */
export type TargetSpace = { target: string; free: number; total: number } | { target: string; free: null; total: null };

/**
 * Samples every `intervalMs`: the process and the machine, the volumes, the event loop, requests,
 * the HSM, jobs, backups, the certificate, sessions, the audit export, open alerts. Each sample is
 * merged into the database (1-minute points), published to the Prometheus registry and handed to
 * the alert rules. A failing source is logged and skipped; the others still count.
 */
export class Sampler {
  private timer: NodeJS.Timeout | null = null;
  private lag: ReturnType<typeof monitorEventLoopDelay>;
  private cpu = process.cpuUsage();
  private cpuAt = performance.now();
  private sys = os.cpus().map((c) => c.times);
  private gauges = new Map<string, Gauge>();
  private last: Sample[] = [];
  private running: Promise<Sample[]> | null = null;
  /** called with every sample (the alert rules) */
  onSample: ((samples: readonly Sample[], at: number) => Promise<void> | void) | undefined;

  constructor(private readonly o: SamplerOptions) {
    this.lag = monitorEventLoopDelay({ resolution: 20 });
  }

  start(): void {
    if (this.timer) return;
    this.lag.enable();
    this.timer = setInterval(
      () => void this.sample().catch((e: unknown) => this.o.log.warn({ err: e }, 'metric sampling failed')),
      this.o.intervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.lag.disable();
  }

  /** the latest sample (the console's "now") */
  latest(): readonly Sample[] {
    return this.last;
  }

  /** Takes one sample now (also what the timer does). */
  sample(): Promise<Sample[]> {
    this.running ??= this.take().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async take(): Promise<Sample[]> {
    const at = this.o.clock.nowMs();
    const out: Sample[] = [];
    const parts: [string, () => Promise<Sample[]> | Sample[]][] = [
      ['process', () => this.processSamples()],
      ['disk', () => this.diskSamples()],
      ['http', () => this.o.http.take()],
      ['hsm', () => this.hsmSamples()],
      ['jobs', () => this.jobSamples(at)],
      ['backups', () => this.backupSamples(at)],
      ['certificate', () => this.certSamples(at)],
      ['sessions', () => this.sessionSamples(at)],
      ['audit', () => this.auditSamples(at)],
      ['clock', () => this.clockSamples(at)],
      ['targets', () => this.targetSamples(at)],
      ['alerts', () => this.alertSamples()],
    ];
    for (const [what, f] of parts) {
      try {
        out.push(...(await f()));
      } catch (e) {
        this.o.log.warn({ err: e, source: what }, 'metric source failed');
      }
    }
    this.last = out;
    this.publish(out);
    await this.o.store.write(out, at);
    await this.onSample?.(out, at);
    return out;
  }

  private publish(samples: readonly Sample[]): void {
    const byName = new Map<string, Sample[]>();
    for (const s of samples) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
    for (const [name, list] of byName) {
      let g = this.gauges.get(name);
      if (!g) {
        const labelNames = [...new Set(list.flatMap((s) => Object.keys(s.labels ?? {})))].sort();
        g = new Gauge({
          name: `coffre_${name}`,
          help: METRIC_HELP[name] ?? name,
          labelNames,
          registers: [this.o.registry],
        });
        this.gauges.set(name, g);
      }
      g.reset();
      for (const s of list) g.set(s.labels ?? {}, s.value);
    }
    for (const [name, g] of this.gauges) if (!byName.has(name)) g.reset();
  }

  private processSamples(): Sample[] {
    const now = performance.now();
    const cpu = process.cpuUsage(this.cpu);
    const wall = Math.max(1, now - this.cpuAt);
    this.cpu = process.cpuUsage();
    this.cpuAt = now;
    const sys = os.cpus().map((c) => c.times);
    let busy = 0;
    let total = 0;
    for (const [i, t] of sys.entries()) {
      const p = this.sys[i];
      if (!p) continue;
      const d = (k: keyof typeof t) => t[k] - p[k];
      const idle = d('idle');
      const all = d('user') + d('nice') + d('sys') + d('irq') + idle;
      busy += all - idle;
      total += all;
    }
    this.sys = sys;
    const mem = process.memoryUsage();
    const totalMem = os.totalmem();
    const avail = availableMemory();
    const q = (p: number) => this.lag.percentile(p) / 1e6;
    const lag: Sample[] =
      this.lag.count > 0
        ? [
            { name: 'event_loop_lag_ms', labels: { stat: 'p50' }, value: q(50) },
            { name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: q(99) },
            { name: 'event_loop_lag_ms', labels: { stat: 'max' }, value: this.lag.max / 1e6 },
          ]
        : [];
    this.lag.reset();
    return [
      { name: 'cpu_process_percent', value: ((cpu.user + cpu.system) / 1000 / wall) * 100 },
      ...(total > 0 ? [{ name: 'cpu_system_percent', value: (busy / total) * 100 }] : []),
      { name: 'memory_rss_bytes', value: mem.rss },
      { name: 'memory_heap_used_bytes', value: mem.heapUsed },
      { name: 'memory_heap_total_bytes', value: mem.heapTotal },
      { name: 'memory_system_total_bytes', value: totalMem },
      { name: 'memory_system_available_bytes', value: avail },
      { name: 'memory_system_used_percent', value: 100 - (avail / totalMem) * 100 },
      ...lag,
    ];
  }

  private async diskSamples(): Promise<Sample[]> {
    const out: Sample[] = [];
    for (const v of this.o.volumes) {
      const s = await fs.statfs(v.dir);
      const total = s.blocks * s.bsize;
      const free = s.bavail * s.bsize;
      // Use% as df counts it: used / (used + available to unprivileged users)
      const used = (s.blocks - s.bfree) * s.bsize;
      out.push(
        { name: 'disk_total_bytes', labels: { volume: v.name }, value: total },
        { name: 'disk_free_bytes', labels: { volume: v.name }, value: free },
        {
          name: 'disk_used_percent',
          labels: { volume: v.name },
          value: used + free > 0 ? (used / (used + free)) * 100 : 0,
        },
      );
    }
    return out;
  }

  private async hsmSamples(): Promise<Sample[]> {
    if (!this.o.hsmProbe) return [];
    const t0 = performance.now();
    try {
      await this.o.hsmProbe();
      return [
        { name: 'hsm_up', value: 1 },
        { name: 'hsm_latency_ms', value: performance.now() - t0 },
      ];
    } catch {
      return [{ name: 'hsm_up', value: 0 }];
    }
  }

  private async jobSamples(now: number): Promise<Sample[]> {
    const rows = await this.o.db
      .selectFrom('job_runs')
      .select(['job', 'outcome', (eb) => eb.fn.countAll<number>().as('n')])
      .where('ended_at', '>=', now - 86_400_000)
      .groupBy(['job', 'outcome'])
      .execute();
    const last = await this.o.db
      .selectFrom('job_runs as r')
      .select(['r.job', 'r.started_at', 'r.ended_at'])
      .where('r.ended_at', 'is not', null)
      .where('r.id', 'in', (qb) =>
        qb
          .selectFrom('job_runs')
          .select((eb) => eb.fn.max('id').as('id'))
          .where('ended_at', 'is not', null)
          .groupBy('job'),
      )
      .execute();
    return [
      ...rows.map((r) => ({ name: 'job_runs_24h', labels: { job: r.job, outcome: r.outcome }, value: Number(r.n) })),
      ...last.map((r) => ({
        name: 'job_last_duration_seconds',
        labels: { job: r.job },
        value: (Number(r.ended_at) - Number(r.started_at)) / 1000,
      })),
    ];
  }

  private async backupSamples(now: number): Promise<Sample[]> {
    const targets = await this.o.db.selectFrom('backup_targets').select(['name', 'created_at']).execute();
    const newest = await this.o.db
      .selectFrom('backups')
      .select(['target', (eb) => eb.fn.max('created_at').as('at')])
      .where('state', '=', 'complete')
      .groupBy('target')
      .execute();
    const at = new Map(newest.map((r) => [r.target, Number(r.at)]));
    const drill = await this.o.db
      .selectFrom('backup_checks')
      .select((eb) => eb.fn.max('ended_at').as('at'))
      .where('kind', '=', 'drill')
      .where('ok', '=', 1)
      .executeTakeFirst();
    // a target never backed up counts from its registration
    const out: Sample[] = targets.map((t) => ({
      name: 'backup_newest_age_seconds',
      labels: { target: t.name },
      value: (now - (at.get(t.name) ?? Number(t.created_at))) / 1000,
    }));
    if (drill?.at !== null && drill?.at !== undefined)
      out.push({ name: 'backup_drill_age_seconds', value: (now - Number(drill.at)) / 1000 });
    return out;
  }

  private async certSamples(now: number): Promise<Sample[]> {
    if (!this.o.certFile) return [];
    const cert = new X509Certificate(await fs.readFile(this.o.certFile));
    return [{ name: 'tls_certificate_expiry_days', value: (Date.parse(cert.validTo) - now) / 86_400_000 }];
  }

  private async sessionSamples(now: number): Promise<Sample[]> {
    const r = await this.o.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('ended_at', 'is', null)
      .where('expires_at', '>', now)
      .where('last_seen_at', '>', now - this.o.sessionIdleMs)
      .executeTakeFirst();
    return [{ name: 'sessions_active', value: Number(r?.n ?? 0) }];
  }

  private async auditSamples(now: number): Promise<Sample[]> {
    const head = await this.o.db.selectFrom('audit_head').select('seq').executeTakeFirst();
    const cur = await this.o.db
      .selectFrom('audit_cursors')
      .select('seq')
      .where('sink', '=', 'syslog')
      .executeTakeFirst();
    if (!cur) return [];
    const lag = Math.max(0, Number(head?.seq ?? 0) - Number(cur.seq));
    // the oldest record waiting: the first one after the export cursor
    const oldest =
      lag > 0
        ? await this.o.db
            .selectFrom('audit_events')
            .select('at')
            .where('seq', '>', Number(cur.seq))
            .orderBy('seq')
            .limit(1)
            .executeTakeFirst()
        : undefined;
    return [
      { name: 'audit_export_lag_records', value: lag },
      { name: 'audit_export_lag_seconds', value: oldest ? Math.max(0, (now - Number(oldest.at)) / 1000) : 0 },
    ];
  }

  private clockCache: { at: number; samples: Sample[] } | null = null;
  private async clockSamples(now: number): Promise<Sample[]> {
    const f = this.o.clockOffset;
    if (!f) return [];
    if (
      !this.clockCache ||
      now - this.clockCache.at >= (this.o.clockIntervalMs ?? 300_000) ||
      now < this.clockCache.at
    ) {
      const r = await f();
      this.clockCache = {
        at: now,
        samples: [
          { name: 'clock_peers_reached', value: r.reached },
          ...(r.offsetMs === null ? [] : [{ name: 'clock_offset_seconds', value: r.offsetMs / 1000 }]),
        ],
      };
    }
    return this.clockCache.samples;
  }

  private targetCache: { at: number; samples: Sample[] } | null = null;
  /** each registered backup target's space; a remote target is contacted only every `targetSpaceIntervalMs` */
  private async targetSamples(now: number): Promise<Sample[]> {
    const f = this.o.targetSpace;
    if (!f) return [];
    if (
      !this.targetCache ||
      now - this.targetCache.at >= (this.o.targetSpaceIntervalMs ?? 300_000) ||
      now < this.targetCache.at
    ) {
      const out: Sample[] = [];
      for (const t of await f()) {
        const labels = { target: t.target };
        out.push({ name: 'backup_target_up', labels, value: t.total === null ? 0 : 1 });
        if (t.total === null || t.free === null) continue;
        out.push(
          { name: 'backup_target_total_bytes', labels, value: t.total },
          { name: 'backup_target_free_bytes', labels, value: t.free },
          { name: 'backup_target_used_percent', labels, value: t.total > 0 ? 100 - (t.free / t.total) * 100 : 0 },
        );
      }
      this.targetCache = { at: now, samples: out };
    }
    return this.targetCache.samples;
  }

  private async alertSamples(): Promise<Sample[]> {
    const rows = await this.o.db
      .selectFrom('alerts')
      .select(['severity', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', 'in', ['open', 'acknowledged'])
      .groupBy('severity')
      .execute();
    const by = new Map(rows.map((r) => [r.severity, Number(r.n)]));
    return (['info', 'warning', 'critical'] as const).map((severity) => ({
      name: 'alerts_open',
      labels: { severity },
      value: by.get(severity) ?? 0,
    }));
  }
}

/** MemAvailable from /proc/meminfo (Linux), else os.freemem() */
function availableMemory(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return os.freemem();
}
