import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Registry } from 'prom-client';
import type { Kysely } from 'kysely';
import type { Config } from '../config/index.js';
import { readSecretFile } from '../config/index.js';
import type { MonitoringSchema } from '../db/index.js';
import type { Auditor } from '../audit/types.js';
import type { HealthCheck } from '../http/index.js';
import type { JobDefinition } from '../jobs/types.js';
import { Leases, makeHolderId, type Scheduler } from '../jobs/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AlertOutbox } from './outbox.js';
import { DbAlerter } from './alerter.js';
import { createAlertChannels } from './registry.js';
import type { AlertMailer } from './channels/email.js';
import { MetricStore } from './metric-store.js';
import { HttpStats, Sampler, type TargetSpace } from './sampler.js';
import { measureClockOffset } from './clock.js';
import { clientCertServerOptions, parseCaBundle } from './mtls.js';
import type { TlsOptions } from 'node:tls';
import { metricsEndpoint, monitoringRoutes } from './routes.js';
import { RuleEngine } from './rules.js';
import { installShedding } from './shedding.js';

const RULES_LEASE = 'monitoring.rules';

export interface MonitoringOptions {
  config: Config;
  db: Kysely<MonitoringSchema>;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  mailer: AlertMailer | undefined;
  /** a real HSM operation, timed as the HSM's latency */
  hsmProbe?: () => Promise<unknown>;
  /** verifies the audit chain (the audit-chain rule) */
  verifyAudit?: () => Promise<{ ok: boolean; firstBadSeq?: number; problem?: { code: string } }>;
  /** space at each backup target (BackupService.targetSpace) */
  targetSpace?: () => Promise<readonly TargetSpace[]>;
}

export interface Monitoring {
  alerter: DbAlerter;
  outbox: AlertOutbox;
  store: MetricStore;
  sampler: Sampler;
  registry: Registry;
  rules: RuleEngine;
  /** installed on the HTTP root before any route: request metrics, load shedding, request budgets */
  extensions: ((app: FastifyInstance) => Promise<void> | void)[];
  /** the operations API (under /api/v1) and `/metrics` (root) */
  api(o: { scheduler: Scheduler; health: () => readonly HealthCheck[] }): FastifyPluginAsync;
  root: FastifyPluginAsync;
  /** extra HTTPS server options when scrapers may present a client certificate (monitoring.scrapeClientCaFile) */
  tlsOptions(base: TlsOptions): TlsOptions;
  jobs: JobDefinition[];
  /** serving process only: sampling and background delivery */
  start(): void;
  stop(graceMs: number): Promise<void>;
}

/**
 * Monitoring for one process: alerts (delivered through the outbox by whichever process gets
 * there first), metric sampling, the operations API. The CLI uses only the alerter; `start()`
 * (serve) adds sampling every `monitoring.sampleIntervalMs` and outbox polling.
 */
export function wireMonitoring(o: MonitoringOptions): Monitoring {
  const { config, db, clock, log } = o;
  const m = config.monitoring;
  const { channels, minSeverity } = createAlertChannels({
    alerts: m.alerts,
    syslog: config.audit.syslog,
    mailer: o.mailer,
  });
  const outbox = new AlertOutbox({
    db,
    clock,
    log,
    channels,
    holder: makeHolderId(),
    maxAttempts: m.alerts.maxAttempts,
  });
  const alerter = new DbAlerter({
    db,
    audit: o.audit,
    clock,
    log,
    applianceId: config.applianceId,
    outbox,
    minSeverity,
    dedupeMs: m.alerts.dedupeMs,
    renotifyMs: m.alerts.renotifyMs,
  });
  const registry = new Registry();
  const http = new HttpStats(registry);
  const store = new MetricStore(db);
  const clockCa = m.clock.caFile ? readFileSync(m.clock.caFile, 'utf8') : undefined;
  const sampler = new Sampler({
    db,
    clock,
    log,
    store,
    registry,
    http,
    intervalMs: m.sampleIntervalMs,
    volumes: [
      { name: 'data', dir: config.dataDir },
      { name: 'blobs', dir: config.storage.dir },
    ],
    ...(o.hsmProbe ? { hsmProbe: o.hsmProbe } : {}),
    certFile: config.tls.certFile,
    sessionIdleMs: config.auth.sessions.idleTimeoutMinutes * 60_000,
    ...(o.targetSpace ? { targetSpace: o.targetSpace, targetSpaceIntervalMs: m.targetSpaceIntervalMs } : {}),
    ...(m.clock.peers.length
      ? {
          clockOffset: () => measureClockOffset({ peers: m.clock.peers, ...(clockCa ? { ca: clockCa } : {}) }),
          clockIntervalMs: m.clock.intervalMs,
        }
      : {}),
  });
  const rules = new RuleEngine({
    db,
    clock,
    log,
    alerts: alerter,
    rules: m.rules,
    timeZone: config.site.timeZone,
    ...(o.verifyAudit ? { verifyAudit: o.verifyAudit } : {}),
  });
  // one node evaluates the rules (database lease, renewed at every sample)
  const holder = makeHolderId();
  const leases = new Leases(db, clock, holder, Math.max(config.jobs.leaseTtlMs, 4 * m.sampleIntervalMs));
  let leading = false;
  sampler.onSample = async (samples, at) => {
    leading = leading ? await leases.renew(RULES_LEASE) : await leases.acquire(RULES_LEASE);
    if (leading) await rules.evaluate({ now: at, samples });
  };
  const clientCaPem = m.scrapeClientCaFile ? readFileSync(m.scrapeClientCaFile, 'utf8') : undefined;
  const clientCas = clientCaPem ? parseCaBundle(clientCaPem) : [];
  const token = m.scrapeTokenFile ? readSecretFile(m.scrapeTokenFile, 'monitoring.scrapeTokenFile') : undefined;
  const compact: JobDefinition = {
    name: 'monitoring.compact',
    schedule: '7 * * * *',
    run: async () => store.compact(clock.nowMs(), m.fullResolutionHours * 3_600_000, m.retentionDays * 86_400_000),
  };
  return {
    alerter,
    outbox,
    store,
    sampler,
    registry,
    rules,
    extensions: [(app) => http.install(app), (app) => installShedding(app, m)],
    api: ({ scheduler, health }) => monitoringRoutes({ db, clock, alerter, store, sampler, scheduler, health }),
    root: metricsEndpoint({ registry, token, clientCas }),
    tlsOptions: (base) => (clientCaPem ? { ...base, ...clientCertServerOptions(clientCaPem, base.ca) } : base),
    jobs: [compact],
    start: () => {
      outbox.start();
      sampler.start();
    },
    stop: async (graceMs) => {
      sampler.stop();
      if (leading) await leases.release(RULES_LEASE).catch(() => undefined);
      await outbox.stop(graceMs);
    },
  };
}
