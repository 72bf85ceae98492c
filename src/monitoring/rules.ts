import { sql, type Kysely } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';
import type { MonitoringConfig } from '../config/sections/monitoring.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Alert, Alerter } from './types.js';
import type { Sample } from './metric-store.js';

type Rules = MonitoringConfig['rules'];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * What a rule says about one subject at one evaluation: the condition holds (`fire`), has ended
 * (`clear`), or sits between the raise and clear thresholds (`hold`: nothing changes, hysteresis).
 * One-off findings (`event`) raise without a condition to clear.
 */
export type Finding = Alert & { state: 'fire' | 'clear' | 'hold' | 'event'; forMs?: number };

export interface RuleInputs {
  now: number;
  samples: readonly Sample[];
}

export interface RuleEngineOptions {
  db: Kysely<MonitoringSchema>;
  clock: Clock;
  log: Logger;
  alerts: Alerter;
  rules: Rules;
  /** site.timeZone: working hours are local */
  timeZone: string;
  /** checks the audit chain (AuditService.verify); absent = the rule is off */
  verifyAudit?: () => Promise<{ ok: boolean; firstBadSeq?: number; problem?: { code: string } }>;
}

const value = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
const band = (v: number, raise: number, clear: number, above = true): Finding['state'] =>
  above ? (v >= raise ? 'fire' : v <= clear ? 'clear' : 'hold') : v <= raise ? 'fire' : v >= clear ? 'clear' : 'hold';
const fmt = (n: number, d = 1) => n.toFixed(d);
const bytes = (n: number) => (n >= 1024 ** 3 ? `${fmt(n / 1024 ** 3)} GiB` : `${fmt(n / 1024 ** 2)} MiB`);

/**
 * The alert rules (docs/monitoring.md "Alert rules"). `evaluate` runs on every metric sample;
 * rules that read the database run at most every `rules.intervalMs`. Conditions go through
 * hysteresis (separate raise and clear thresholds) and, where configured, must hold for `forMs`
 * before an alert is raised; an alert is raised again at each evaluation while its condition holds
 * (the alerter counts repeats and sends reminders) and cleared when it ends.
 */
export class RuleEngine {
  private readonly since = new Map<string, number>();
  private readonly known = new Set<string>();
  private lastDbAt = -Infinity;
  private lastAuditAt = -Infinity;
  private auditState: Finding | null = null;
  private offHoursSeq: number | null = null;

  constructor(private readonly o: RuleEngineOptions) {}

  async evaluate(input: RuleInputs): Promise<Finding[]> {
    const findings = [...this.fromSamples(input.samples)];
    if (input.now - this.lastDbAt >= this.o.rules.intervalMs) {
      this.lastDbAt = input.now;
      for (const [name, f] of [
        ['jobs', () => this.jobs()],
        ['drill', () => this.drill(input.now)],
        ['denials', () => this.denials(input.now)],
        ['downloads', () => this.downloads(input.now)],
        ['off-hours', () => this.offHours()],
        ['access-review', () => this.accessReview(input.now)],
        ['audit-chain', () => this.auditChain(input.now)],
      ] as const) {
        try {
          findings.push(...(await f()));
        } catch (e) {
          this.o.log.warn({ err: e, rule: name }, 'alert rule failed');
        }
      }
    }
    await this.apply(findings, input.now);
    return findings;
  }

  private async apply(findings: readonly Finding[], now: number): Promise<void> {
    for (const f of findings) {
      const key = `${f.kind}|${JSON.stringify(f.targets ?? {})}`;
      const { state, forMs, ...alert } = f;
      try {
        if (state === 'event') {
          await this.o.alerts.raise(alert);
        } else if (state === 'fire') {
          const start = this.since.get(key) ?? now;
          this.since.set(key, start);
          if (now - start >= (forMs ?? 0)) {
            await this.o.alerts.raise(alert);
            this.known.add(key);
          }
        } else if (state === 'clear') {
          this.since.delete(key);
          // an alert left open by an earlier process is cleared too (once per key and process)
          if (this.known.has(key) || !this.known.has(`seen:${key}`))
            await this.o.alerts.clear?.({ kind: f.kind, ...(f.targets ? { targets: f.targets } : {}) });
          this.known.delete(key);
          this.known.add(`seen:${key}`);
        }
      } catch (e) {
        this.o.log.warn({ err: e, alert: f.kind }, 'alert rule could not raise or clear');
      }
    }
  }

  // ----------------------------------------------------------- from the metric sample

  private *fromSamples(samples: readonly Sample[]): Generator<Finding> {
    const r = this.o.rules;
    if (r.disk.enabled) {
      for (const s of value(samples, 'disk_used_percent')) {
        const volume = s.labels?.volume ?? 'data';
        yield {
          kind: 'monitoring.disk',
          severity: s.value >= 95 ? 'critical' : 'warning',
          message: `the ${volume} volume is ${fmt(s.value)} % full (alert at ${r.disk.percent} %, clears at ${r.disk.clearPercent} %)`,
          targets: { volume },
          state: band(s.value, r.disk.percent, r.disk.clearPercent),
        };
      }
    }
    const mem = value(samples, 'memory_system_used_percent')[0];
    if (r.memory.enabled && mem)
      yield {
        kind: 'monitoring.memory',
        severity: 'warning',
        message: `memory ${fmt(mem.value)} % used (alert at ${r.memory.percent} %, clears at ${r.memory.clearPercent} %)`,
        state: band(mem.value, r.memory.percent, r.memory.clearPercent),
      };
    const lag = value(samples, 'event_loop_lag_ms', { stat: 'p99' })[0];
    if (r.eventLoopLag.enabled && lag)
      yield {
        kind: 'monitoring.event-loop',
        severity: 'warning',
        message: `event-loop delay p99 ${fmt(lag.value)} ms (alert at ${r.eventLoopLag.ms} ms for ${r.eventLoopLag.forMs / 1000} s)`,
        state: band(lag.value, r.eventLoopLag.ms, r.eventLoopLag.clearMs),
        forMs: r.eventLoopLag.forMs,
      };
    const hsm = value(samples, 'hsm_up')[0];
    if (r.hsm.enabled && hsm)
      yield {
        kind: 'hsm.unreachable',
        severity: 'critical',
        message: hsm.value
          ? 'the HSM answers again'
          : `the HSM does not answer (for at least ${r.hsm.forMs / 1000} s): anything needing a key fails`,
        state: hsm.value ? 'clear' : 'fire',
        forMs: r.hsm.forMs,
      };
    if (r.backupAge.enabled) {
      for (const s of value(samples, 'backup_newest_age_seconds')) {
        const target = s.labels?.target ?? 'unknown';
        const hours = s.value / 3600;
        yield {
          kind: 'backup.stale',
          severity: 'critical',
          message: `no complete backup at target ${target} for ${fmt(hours)} h (limit ${r.backupAge.hours} h)`,
          targets: { target },
          state: hours > r.backupAge.hours ? 'fire' : 'clear',
        };
      }
    }
    if (r.targetDisk.enabled) {
      for (const s of value(samples, 'backup_target_used_percent')) {
        const target = s.labels?.target ?? 'unknown';
        yield {
          kind: 'backup.target-disk',
          severity: s.value >= 95 ? 'critical' : 'warning',
          message: `backup target ${target} is ${fmt(s.value)} % full (alert at ${r.targetDisk.percent} %, clears at ${r.targetDisk.clearPercent} %)`,
          targets: { target },
          state: band(s.value, r.targetDisk.percent, r.targetDisk.clearPercent),
        };
      }
    }
    const exp = value(samples, 'audit_export_lag_seconds')[0];
    if (r.auditExport.enabled && exp) {
      const records = value(samples, 'audit_export_lag_records')[0]?.value ?? 0;
      yield {
        kind: 'audit.export-lagging',
        severity: 'warning',
        message:
          exp.value > 0
            ? `${records} audit record(s) wait for the syslog collector, the oldest for ${fmt(exp.value / 60)} min (alert at ${fmt(r.auditExport.seconds / 60)} min)`
            : 'the audit export has caught up',
        state: band(exp.value, r.auditExport.seconds, r.auditExport.clearSeconds),
      };
    }
    const drift = value(samples, 'clock_offset_seconds')[0];
    if (r.clockDrift.enabled && drift) {
      const off = Math.abs(drift.value);
      yield {
        kind: 'monitoring.clock-drift',
        severity: off >= 60 ? 'critical' : 'warning',
        message: `this clock is ${fmt(off)} s ${drift.value > 0 ? 'ahead of' : 'behind'} its HTTPS peers (alert at ${r.clockDrift.seconds} s): timestamps, sessions and one-time codes are affected`,
        state: band(off, r.clockDrift.seconds, r.clockDrift.clearSeconds),
      };
    }
    const cert = value(samples, 'tls_certificate_expiry_days')[0];
    if (r.certExpiry.enabled && cert)
      yield {
        kind: 'tls.certificate-expiring',
        severity: cert.value < 7 ? 'critical' : 'warning',
        message:
          cert.value < 0
            ? 'the HTTPS certificate has expired'
            : `the HTTPS certificate expires in ${fmt(cert.value)} days (alert under ${r.certExpiry.days})`,
        state: cert.value < r.certExpiry.days ? 'fire' : 'clear',
      };
  }

  // ----------------------------------------------------------- from the database

  /** backup, verify, drill and every other job: the latest run of each failed */
  private async jobs(): Promise<Finding[]> {
    if (!this.o.rules.jobFailed.enabled) return [];
    const last = await this.o.db
      .selectFrom('job_runs')
      .select(['job', 'outcome', 'error', 'id'])
      .where('id', 'in', (qb) =>
        qb
          .selectFrom('job_runs')
          .select((eb) => eb.fn.max('id').as('id'))
          .where('outcome', 'in', ['succeeded', 'failed'])
          .groupBy('job'),
      )
      .execute();
    return last.map((r) => ({
      kind: 'job.failed',
      severity: /^backup/.test(r.job) ? 'critical' : 'warning',
      message:
        r.outcome === 'failed'
          ? `the last run of ${r.job} failed: ${(r.error ?? 'unknown error').slice(0, 300)}`
          : `${r.job} succeeded again`,
      targets: { job: r.job },
      state: r.outcome === 'failed' ? 'fire' : 'clear',
    }));
  }

  private async drill(now: number): Promise<Finding[]> {
    const r = this.o.rules.drillAge;
    if (!r.enabled) return [];
    const drill = await this.o.db
      .selectFrom('backup_checks')
      .select((eb) => eb.fn.max('ended_at').as('at'))
      .where('kind', '=', 'drill')
      .where('ok', '=', 1)
      .executeTakeFirst();
    const first = await this.o.db
      .selectFrom('backup_targets')
      .select((eb) => eb.fn.min('created_at').as('at'))
      .executeTakeFirst();
    if (first?.at === null || first?.at === undefined)
      return [{ kind: 'backup.drill-stale', severity: 'warning', message: 'no backup target', state: 'clear' }];
    const since = drill?.at !== null && drill?.at !== undefined ? Number(drill.at) : Number(first.at);
    const days = (now - since) / DAY;
    return [
      {
        kind: 'backup.drill-stale',
        severity: 'warning',
        message:
          drill?.at == null
            ? `no restore drill has succeeded yet (first target registered ${fmt(days)} days ago; limit ${r.days} days)`
            : `the last successful restore drill is ${fmt(days)} days old (limit ${r.days} days)`,
        state: days > r.days ? 'fire' : 'clear',
      },
    ];
  }

  /** authorisation denials (sign-in failures are the auth module's) per actor over the window */
  private async denials(now: number): Promise<Finding[]> {
    const r = this.o.rules.denials;
    if (!r.enabled) return [];
    const rows = await this.o.db
      .selectFrom('audit_events')
      .select(['actor', (eb) => eb.fn.countAll<number>().as('n')])
      .where('outcome', '=', 'denied')
      .where('action', 'not like', 'auth.%')
      .where('at', '>=', now - r.windowMs)
      .groupBy('actor')
      .execute();
    return this.perActor(
      'security.denials',
      rows.map((x) => ({
        actor: x.actor,
        state: band(Number(x.n), r.count, r.count / 2),
        message: `${Number(x.n)} authorisation denials for ${x.actor} in ${r.windowMs / 60_000} min (alert at ${r.count})`,
      })),
      'warning',
    );
  }

  /** downloads per user over the window: count and plaintext bytes */
  private async downloads(now: number): Promise<Finding[]> {
    const r = this.o.rules.massDownload;
    if (!r.enabled) return [];
    const rows = await this.o.db
      .selectFrom('audit_events as e')
      .innerJoin('audit_targets as d', (j) => j.onRef('d.seq', '=', 'e.seq').on('d.kind', '=', 'document'))
      .innerJoin('audit_targets as n', (j) => j.onRef('n.seq', '=', 'e.seq').on('n.kind', '=', 'version'))
      .leftJoin('vault_versions as v', (j) =>
        j.onRef('v.document_id', '=', 'd.id').on(sql`cast(v.version as text)`, '=', sql.ref('n.id')),
      )
      .select(['e.actor', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.sum<number>('v.size').as('bytes')])
      .where('e.action', '=', 'doc.download')
      .where('e.outcome', '=', 'success')
      .where('e.at', '>=', now - r.windowMs)
      .groupBy('e.actor')
      .execute();
    return this.perActor(
      'security.mass-download',
      rows.map((x) => {
        const n = Number(x.n);
        const b = Number(x.bytes ?? 0);
        const fire = n >= r.count || b >= r.bytes;
        const clear = n <= r.count / 2 && b <= r.bytes / 2;
        return {
          actor: x.actor,
          state: fire ? 'fire' : clear ? 'clear' : 'hold',
          message: `${x.actor} downloaded ${n} document version(s), ${bytes(b)}, in ${r.windowMs / 60_000} min (alert at ${r.count} or ${bytes(r.bytes)})`,
        };
      }),
      'critical',
    );
  }

  /** an actor absent from this round's rows has nothing in the window: its alert (if any) clears */
  private readonly actorsSeen = new Map<string, Set<string>>();
  private perActor(
    kind: string,
    rows: { actor: string; state: Finding['state']; message: string }[],
    severity: Alert['severity'],
  ): Finding[] {
    const seen = this.actorsSeen.get(kind) ?? new Set<string>();
    const now = new Set(rows.map((r) => r.actor));
    const out: Finding[] = rows.map((r) => ({
      kind,
      severity,
      message: r.message,
      targets: { actor: r.actor },
      state: r.state,
    }));
    for (const a of seen)
      if (!now.has(a)) out.push({ kind, severity, message: 'quiet again', targets: { actor: a }, state: 'clear' });
    this.actorsSeen.set(kind, new Set([...now].filter((a) => rows.find((r) => r.actor === a)?.state !== 'clear')));
    return out;
  }

  /** every change made by an admin outside working hours (site time zone): one alert per admin per dedupe window */
  private async offHours(): Promise<Finding[]> {
    const r = this.o.rules.offHours;
    if (!r.enabled) return [];
    const head = await this.o.db.selectFrom('audit_head').select('seq').executeTakeFirst();
    const top = Number(head?.seq ?? 0);
    if (this.offHoursSeq === null) {
      this.offHoursSeq = top; // only what happens from now on
      return [];
    }
    const rows = await this.o.db
      .selectFrom('audit_events as e')
      .innerJoin('users as u', (j) => j.on(sql`'user:' || u.id`, '=', sql.ref('e.actor')))
      .select(['e.seq', 'e.at', 'e.actor', 'e.action'])
      .where('e.seq', '>', this.offHoursSeq)
      .where('e.seq', '<=', top)
      .where('u.role', '=', 'admin')
      .where('e.outcome', '=', 'success')
      .where((eb) => eb.and(READ_ONLY.map((p) => eb('e.action', 'not like', p))))
      .orderBy('e.seq')
      .execute();
    this.offHoursSeq = top;
    const fmtParts = new Intl.DateTimeFormat('en-GB', {
      timeZone: this.o.timeZone,
      hour: 'numeric',
      hourCycle: 'h23',
      weekday: 'short',
    });
    const DAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
    const out = new Map<string, Finding>();
    for (const e of rows) {
      const parts = Object.fromEntries(fmtParts.formatToParts(new Date(Number(e.at))).map((p) => [p.type, p.value]));
      const hour = Number(parts.hour);
      const day = DAYS[parts.weekday ?? ''] ?? 0;
      const workday =
        r.firstDay <= r.lastDay ? day >= r.firstDay && day <= r.lastDay : day >= r.firstDay || day <= r.lastDay;
      if (workday && hour >= r.startHour && hour < r.endHour) continue;
      out.set(e.actor, {
        kind: 'security.off-hours-admin',
        severity: 'warning',
        message: `admin ${e.actor} made changes outside working hours (${e.action} at ${new Date(Number(e.at)).toISOString()}, ${this.o.timeZone})`,
        targets: { actor: e.actor },
        state: 'event',
      });
    }
    return [...out.values()];
  }

  private async accessReview(now: number): Promise<Finding[]> {
    if (!this.o.rules.accessReview.enabled) return [];
    const reviews = await this.o.db
      .selectFrom('access_reviews')
      .select(['id', 'due_at', 'closed_at'])
      .where((eb) => eb.or([eb('closed_at', 'is', null), eb('closed_at', '>=', now - 2 * DAY)]))
      .execute();
    const out: Finding[] = [];
    for (const r of reviews) {
      const pending = await this.o.db
        .selectFrom('access_review_items')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('review_id', '=', r.id)
        .where('decision', 'is', null)
        .executeTakeFirst();
      const n = Number(pending?.n ?? 0);
      const overdue = r.closed_at === null && n > 0 && now > Number(r.due_at);
      out.push({
        kind: 'access.review.overdue',
        severity: 'warning',
        message: `access review overdue: ${n} decision(s) pending since ${new Date(Number(r.due_at)).toISOString()}`,
        targets: { review: r.id },
        state: overdue ? 'fire' : 'clear',
      });
    }
    return out;
  }

  private async auditChain(now: number): Promise<Finding[]> {
    const r = this.o.rules.auditChain;
    if (!r.enabled || !this.o.verifyAudit) return [];
    if (now - this.lastAuditAt < r.intervalMs && this.auditState) return [this.auditState];
    this.lastAuditAt = now;
    const v = await this.o.verifyAudit();
    this.auditState = v.ok
      ? { kind: 'audit.chain-broken', severity: 'critical', message: 'the audit trail verifies again', state: 'clear' }
      : {
          kind: 'audit.chain-broken',
          severity: 'critical',
          message: `the audit trail does not verify: ${v.problem?.code ?? 'broken'} at seq ${v.firstBadSeq ?? '?'} (run \`coffre audit verify\`)`,
          state: 'fire',
        };
    return [this.auditState];
  }
}

/** audited actions that change nothing (not "admin actions" for the off-hours rule) */
const READ_ONLY = [
  'auth.%',
  'session.%',
  'alert.%',
  '%.read',
  '%.status',
  '%.query',
  '%.lookup',
  '%.export',
  'audit.verify',
];
