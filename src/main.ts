import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, processEnv, type Config, type Env } from './config/index.js';
import { openDatabase, migrateToLatest, DbWindowCounters, type DatabaseHandle } from './db/index.js';
import { watchDatabase } from './db/faults.js';
import { build, listen, tlsServerOptions, type App } from './http/index.js';
import type { Authenticator, HealthCheck } from './http/index.js';
import { Scheduler, type CronAdapter } from './jobs/index.js';
import { createLogger, type Logger } from './shared/logger.js';
import { systemClock, type Clock } from './shared/clock.js';
import type { FastifyPluginAsync } from 'fastify';
import { BackupService, backupJobs, backupRoutes, backupKeyHolder } from './backup/index.js';
import { AuditService, auditRoutes } from './audit/index.js';
import { isAppError } from './shared/errors.js';
import {
  DepositReceipts,
  HsmSealer,
  ProofStamps,
  ReportArchive,
  TimestampRetrier,
  openTsaClient,
} from './seals/index.js';
import { receiptRoutes, reportRoutes } from './seals/routes.js';
import {
  IncidentMail,
  IncidentNotices,
  IncidentService,
  alertDraftJob,
  backupStaleWaitMs,
  incidentRoutes,
  noticeRoutes,
  statusRoutes,
} from './incidents/index.js';
import { wireMonitoring, type Alerter, type Monitoring } from './monitoring/index.js';
import { smtpSender } from './auth/messaging.js';
import { auditExportHealth, storageHealth } from './monitoring/health.js';
import { referencedBlobIds, wireVault, type VaultService } from './vault/index.js';
import { dbActorDirectory, retentionGuard, wireRecords, type Records } from './records/index.js';
import { wireIdentity, type Identity } from './auth/index.js';
import { embeddedTokenNotice, openKeys, type Keys } from './keys/index.js';
import { openBlobs, type EncryptedBlobs } from './blobs/index.js';
import { createBlobStore } from './storage/index.js';
import { keysRoutes } from './keys/routes.js';
import { consolePlugin } from './console/serve.js';
import { settingsRoutes } from './console/settings.js';
import { PrivacyService, privacyRoutes, ropaHtml } from './privacy/index.js';

/**
 * Composition root: config → db → keys → stores → http + scheduler. No global singletons: every
 * module gets what it needs from here. Implementations are imported only here, by registries and
 * by the named exceptions of docs/architecture.md (checked by `npm run lint`).
 */
export interface ApplianceOptions {
  dataDir: string;
  env?: Env;
  log?: Logger;
  clock?: Clock;
  cron?: CronAdapter;
  /** apply pending migrations (serve: yes; read-only commands: no) */
  migrate?: boolean;
  /** run the database integrity check before returning (serve: yes); a damaged file refuses changes */
  integrityCheck?: boolean;
}

export interface Appliance {
  config: Config;
  log: Logger;
  clock: Clock;
  db: DatabaseHandle;
  /** the customer's HSM, data keys, field encryption (503 KEYS_UNAVAILABLE while the HSM is down) */
  keys: Keys;
  /** document bodies, encrypted under data keys, over the configured BlobStore (src/blobs/) */
  blobs: EncryptedBlobs;
  scheduler: Scheduler;
  /** API plugins of every module, mounted under /api/v1 */
  api: FastifyPluginAsync[];
  /** root plugins (console) */
  root: FastifyPluginAsync[];
  health: HealthCheck[];
  auth: Authenticator | undefined;
  /** the audit trail, an Auditor (fail closed: if it throws, refuse the action) */
  audit: AuditService;
  /** the sealing key (HSM) and its certificates: signatures anyone checks offline (src/seals) */
  seals: HsmSealer;
  /** deposit receipts: signed, timestamped, one per version (src/seals/receipts.ts) */
  receipts: DepositReceipts;
  /** retries RFC 3161 timestamps left pending while no TSA answered (started by `serve`) */
  timestamps: TimestampRetrier;
  /** raise alerts (stored, audited, logged, sent to the channels) */
  alerts: Alerter;
  /** alerts (life cycle, delivery), metrics, the operations API (src/monitoring) */
  monitoring: Monitoring;
  /** users, sessions, tokens, the access policy and workspaces (src/auth, src/access) */
  identity: Identity;
  /** folders, documents and versions (src/vault) */
  vault: VaultService;
  /** history, access reports, retention and legal hold, export (src/records) */
  records: Records;
  /** backups to a distant site, verification, restore drill (src/backup) */
  backup: BackupService;
  /** the incident register, breach clock, notifications (src/incidents) */
  incidents: IncidentService;
  /** what users are told: banner, status page */
  incidentNotices: IncidentNotices;
  /** e-mails of public updates (absent without an SMTP server) */
  incidentMail: IncidentMail | undefined;
  /** a person's data: export, erasure, retention, record of processing (src/privacy) */
  privacy: PrivacyService;
  /** closers in reverse order of opening */
  close(): Promise<void>;
}

export async function openAppliance(o: ApplianceOptions): Promise<Appliance> {
  const env = o.env ?? processEnv();
  const config = loadConfig(o.dataDir, env);
  const log = o.log ?? createLogger({ level: config.logging.level, destination: 'stderr' });
  const clock = o.clock ?? systemClock;
  const closers: (() => Promise<void>)[] = [];
  const db = openDatabase(config.database, { mustExist: config.database.type === 'sqlite' });
  closers.push(() => db.close());
  try {
    if (o.migrate !== false) {
      const r = await migrateToLatest(db.db);
      if (r.applied.length) log.info({ applied: r.applied }, 'migrations applied');
    }
    const scheduler = new Scheduler({
      db: db.db,
      clock,
      log,
      timeZone: config.site.timeZone,
      leaseTtlMs: config.jobs.leaseTtlMs,
      schedules: config.jobs.schedules,
      ...(o.cron ? { cron: o.cron } : {}),
    });
    const api: FastifyPluginAsync[] = [];
    const root: FastifyPluginAsync[] = [consolePlugin({ log })]; // the web console's static files
    const health: HealthCheck[] = [
      {
        name: 'database',
        check: async () => ({
          ok: (await db.db.selectFrom('appliance_meta').select('key').limit(1).execute()) !== undefined,
        }),
      },
    ];
    let auth: Authenticator | undefined;

    // ---- modules are wired here, in dependency order (keys, storage, audit, auth, vault, backup…) ----
    const keys = await openKeys({ config: config.keys, db: db.db, clock, log, bus: db.bus });
    closers.push(() => keys.close());
    const store = createBlobStore(config.storage);
    const { blobs, close: closeBlobs } = openBlobs({ store, dataKeys: keys.dataKeys });
    closers.push(closeBlobs);
    health.push(keys.health);
    keys.jobs.forEach((j) => scheduler.register(j));
    const seals = new HsmSealer({
      db: db.db,
      keys: keys.provider,
      clock,
      identity: { applianceId: config.applianceId, organisation: config.site.name },
    });
    // made at `coffre init`; an install that predates it gets its sealing key on its first start
    await seals
      .ensure()
      .catch((e: unknown) =>
        log.warn(
          { code: isAppError(e) ? e.code : undefined, err: isAppError(e) ? undefined : e },
          'the sealing key cannot be read or made now; seals wait for the HSM',
        ),
      );
    const tsa = config.seals.tsa.urls.length
      ? await openTsaClient(config.seals.tsa, fs.readFileSync(config.seals.tsa.caFile!, 'utf8'))
      : undefined;
    let alerts: Alerter | undefined;
    const audit = new AuditService({
      db: db.db,
      keys: keys.provider,
      clock,
      log,
      applianceId: config.applianceId,
      config: config.audit,
      leaseTtlMs: config.jobs.leaseTtlMs,
      anchorFile: path.join(o.dataDir, 'audit', 'anchor.json'),
      sealer: seals,
      ...(tsa ? { timestamper: tsa } : {}),
      raise: (a) => alerts?.raise(a) ?? Promise.resolve(),
    });
    closers.push(() => audit.close());
    await audit.start();
    api.push(auditRoutes(audit));
    api.push(keysRoutes({ keys, config: config.keys, scheduler, audit }));
    api.push(settingsRoutes({ config, env, audit })); // the console's settings view and its editable subset
    scheduler.register(audit.pruneJob());
    scheduler.register(audit.sealJob());
    const receipts = new DepositReceipts({
      db: db.db,
      fields: keys.fields,
      sealer: seals,
      clock,
      log: log.child({ module: 'seals' }),
      applianceId: config.applianceId,
      ...(tsa ? { timestamper: tsa } : {}),
    });
    closers.push(() => receipts.settled());
    const stamps = new ProofStamps({ db: db.db, clock, ...(tsa ? { timestamper: tsa } : {}) });
    const reports = new ReportArchive({ db: db.db, clock, stamps });
    const timestamps = new TimestampRetrier({
      tsa: tsa ?? { configured: false, timestamp: () => Promise.reject(new Error('no TSA')) },
      sources: [
        ...(audit.seals ? [audit.seals.pendingSource()] : []),
        receipts.pendingSource(),
        stamps.pendingSource(),
      ],
      clock,
      log,
      retryMs: config.seals.tsa.retryMs,
      alertAfterMs: config.seals.tsa.alertAfterMs,
      raise: (a) => alerts?.raise(a) ?? Promise.resolve(),
    });
    closers.push(() => timestamps.stop());
    health.push(
      storageHealth(config.storage.type === 'fs' ? config.storage.dir : store),
      auditExportHealth(audit.forwarder && (() => audit.forwarder!.status()), config.audit.syslog.alertAfterMs, clock),
    );
    const mailer = config.mail.smtp ? smtpSender(config.mail.smtp) : undefined;
    // alerts raised by this process (server or CLI) wait in the outbox; close() delivers what is due
    const monitoring = wireMonitoring({
      config,
      db: db.db,
      clock,
      log,
      audit,
      mailer,
      hsmProbe: () => keys.provider.kekVersions(),
      verifyAudit: () => audit.verify(),
      targetSpace: () => backup.targetSpace(),
    });
    closers.push(() => monitoring.stop(config.http.shutdownGraceMs));
    monitoring.jobs.forEach((j) => scheduler.register(j));
    root.push(monitoring.root);
    alerts = monitoring.alerter;
    const offKeysAlerts = keys.alertOn(alerts); // keys.unavailable, raised at once, cleared on recovery
    closers.push(() => offKeysAlerts());
    const dbWatch = watchDatabase({ db, alerts: monitoring.alerter, clock, log });
    scheduler.register(dbWatch.job);
    const identity = wireIdentity({
      db: db.db,
      clock,
      log,
      fields: keys.fields,
      keys: keys.provider,
      audit,
      alerts,
      auth: config.auth,
      mail: config.mail,
      ...(mailer ? { mailSender: mailer } : {}),
      publicUrl: publicUrlOf(config),
      organisation: config.site.name,
      workspaceLimits: {
        defaultQuotaBytes: config.vault.defaultQuotaBytes,
        maxCreatedPerUser: config.vault.maxWorkspacesPerUser,
      },
    });
    closers.push(() => identity.close());
    auth = identity.authenticator;
    api.push(...identity.api);
    for (const j of identity.jobs) scheduler.register(j);
    const vault = wireVault({
      db: db.db,
      clock,
      log,
      config: config.vault,
      keys: { dataKeys: keys.dataKeys, fields: keys.fields, blobs },
      policy: identity.policy,
      audit,
      alerts,
      retention: retentionGuard({ db: db.db, applianceId: config.applianceId, signer: seals, stamps }),
      signer: seals,
      actors: dbActorDirectory(db.db),
      receipts,
      stamps,
      reports,
      scheduler,
    });
    api.push(vault.api);
    api.push(async (app) => app.register(reportRoutes, { reports, audit }));
    api.push(async (app) =>
      app.register(receiptRoutes, {
        receipts,
        locate: (c, id, action) => vault.service.locate(c, id, action),
        audit,
      }),
    );
    for (const j of vault.jobs) scheduler.register(j);
    const privacy = new PrivacyService({
      db: db.db,
      clock,
      log: log.child({ module: 'privacy' }),
      fields: keys.fields,
      users: identity.users,
      audit,
      config: config.privacy,
      shred: (name) => keys.dataKeys.destroyNamed(name),
    });
    api.push(privacyRoutes(privacy, (lang) => ropaHtml(config, clock.nowMs(), lang)));
    for (const j of privacy.jobs()) scheduler.register(j);
    const records = wireRecords({
      db: db.db,
      clock,
      audit,
      vault: vault.service,
      log: log.child({ module: 'records' }),
      stamps,
      exportSources: {
        workspaceName: (id) => identity.workspaces.nameOf(id),
        receipt: (documentId, version) => receipts.get(documentId, version),
        seals: () => audit.seals?.list() ?? Promise.resolve([]),
        certificates: () => seals.certificates(),
        sign: (data) => seals.sign(data),
        applianceId: config.applianceId,
      },
    });
    api.push(records.api);
    const backup = new BackupService({
      db,
      config: {
        backup: config.backup,
        site: config.site,
        applianceId: config.applianceId,
        dataDir: config.dataDir,
        keys: config.keys,
        storage: config.storage,
        leaseTtlMs: config.jobs.leaseTtlMs,
      },
      keys: keys.provider,
      blobs: blobs.store,
      blobRefs: referencedBlobIds,
      audit,
      exportAuditCheckpoints: () => audit.exportCheckpoints(),
      alerts,
      clock,
      log: log.child({ module: 'backup' }),
    });
    api.push(backupRoutes(backup, scheduler));
    keys.rotation.addHolder(backupKeyHolder(db.db)); // a KEK version that wraps a live backup key is never destroyed
    if (config.backup.enabled) for (const j of backupJobs(backup, config.backup.time)) scheduler.register(j);
    api.push(monitoring.api({ scheduler, health: () => health }));
    const notices = new IncidentNotices({
      db: db.db,
      audit,
      clock,
      memberIds: (ids) => identity.workspaces.memberIds(ids),
    });
    const incidentMail = mailer
      ? new IncidentMail({
          notices,
          mailer,
          recipient: async (id) => {
            const r = await identity.users.byId(id);
            if (!r || r.state !== 'active') return null;
            return { email: await identity.users.email(r), username: r.username, language: r.language };
          },
          everyone: async () => (await identity.users.list()).filter((r) => r.state === 'active').map((r) => r.id),
          publicUrl: publicUrlOf(config),
          organisation: config.site.name ?? 'Coffre',
          log: log.child({ module: 'incidents' }),
        })
      : undefined;
    if (incidentMail) closers.push(() => incidentMail.drain());
    const incidents = new IncidentService({
      db: db.db,
      audit,
      clock,
      ...(incidentMail ? { onPublicUpdate: (id: string, u: number) => incidentMail.publish(id, u) } : {}),
      existing: {
        workspaces: (ids) => identity.workspaces.existing(ids),
        users: async (ids) =>
          new Set((await Promise.all(ids.map((id) => identity.users.byId(id)))).flatMap((r) => (r ? [r.id] : []))),
      },
    });
    api.push(
      incidentRoutes({
        service: incidents,
        alerts,
        applianceId: config.applianceId,
        organisation: config.site.name ?? '',
      }),
      noticeRoutes(notices),
    );
    root.push(statusRoutes({ notices, organisation: config.site.name ?? 'Coffre', now: () => clock.nowMs() }));
    scheduler.register(
      alertDraftJob(
        incidents,
        async () =>
          (await monitoring.alerter.list({ state: 'active', limit: 500 })).map((a) => ({
            id: a.id,
            kind: a.kind,
            severity: a.severity,
            raisedAt: a.raisedAt,
          })),
        () => ({
          now: clock.nowMs(),
          minOpenMs: { 'backup.stale': backupStaleWaitMs(config.monitoring.rules.backupAge.hours) },
        }),
      ),
    );

    if (o.integrityCheck) await dbWatch.check();

    return {
      config,
      log,
      clock,
      db,
      keys,
      blobs,
      scheduler,
      api,
      root,
      health,
      auth,
      audit,
      seals,
      receipts,
      timestamps,
      alerts,
      monitoring,
      identity,
      vault: vault.service,
      records,
      backup,
      incidents,
      incidentNotices: notices,
      incidentMail,
      privacy,
      close: async () => {
        await scheduler.stop(config.http.shutdownGraceMs);
        for (const c of closers.reverse()) await c().catch((e: unknown) => log.error({ err: e }, 'close failed'));
      },
    };
  } catch (e) {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    throw e;
  }
}

/** The address users reach the appliance at (links are built from it, never from Host). */
export function publicUrlOf(config: Config): string {
  return config.http.publicUrl ?? `https://${config.http.hostnames[0] ?? '127.0.0.1'}:${config.http.port}`;
}

/** Builds the HTTPS app of an opened appliance (without listening). */
export async function buildApp(a: Appliance, withTls = true): Promise<App> {
  return build({
    http: a.config.http,
    log: a.log,
    ...(withTls ? { https: a.monitoring.tlsOptions(tlsServerOptions(a.config.tls)) } : {}),
    auth: () => a.auth,
    api: a.api,
    root: a.root,
    health: a.health,
    extensions: a.monitoring.extensions,
    // several nodes need PostgreSQL; one process on SQLite counts exactly in memory, without a write per request
    ...(a.config.database.type === 'postgres' ? { rateCounters: new DbWindowCounters(a.db.db) } : {}),
  });
}

export interface Running {
  appliance: Appliance;
  app: App;
  url: string;
  stop(reason?: string): Promise<void>;
}

/** `SIGTERM` → `SIGTERM`, `stop` → `STOP`: a stable reason code for the audit trail. */
const reasonCode = (r: string): string =>
  (
    r
      .toUpperCase()
      .replace(/[^A-Z0-9_]/g, '_')
      .replace(/^[^A-Z]+/, '') || 'STOP'
  ).slice(0, 64);

/** Runs the appliance: HTTPS + scheduler. `stop()` drains within the configured grace. */
export async function serve(o: ApplianceOptions & { port?: number; host?: string }): Promise<Running> {
  const log = o.log ?? createLogger({ level: 'info', destination: 'stdout' });
  const appliance = await openAppliance({ ...o, log, migrate: true, integrityCheck: true });
  let app: App;
  try {
    app = await buildApp(appliance);
    await app.ready();
  } catch (e) {
    await appliance.close();
    throw e;
  }
  const { config } = appliance;
  try {
    // fail closed: no audit trail, no appliance
    await appliance.audit.recordNow({
      action: 'appliance.start',
      actor: 'system',
      outcome: 'success',
      targets: { appliance: config.applianceId },
    });
    await appliance.audit.startExport();
    appliance.timestamps.start();
  } catch (e) {
    await app.close().catch(() => undefined);
    await appliance.close();
    throw e;
  }
  const host = o.host ?? config.http.host;
  const port = o.port ?? config.http.port;
  await listen(app, host, port, log);
  const addr = app.server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const url = `https://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${boundPort}`;
  if (config.jobs.enabled) await appliance.scheduler.start();
  appliance.monitoring.start();
  log.info({ event: 'appliance.started', url, applianceId: config.applianceId }, 'Coffre is serving');
  const embedded = embeddedTokenNotice(config.keys);
  if (embedded) log.warn({ event: 'keys.embedded_token', evaluationOnly: true }, embedded.message);
  let stopping: Promise<void> | undefined;
  const stop = (reason = 'stop') =>
    (stopping ??= (async () => {
      log.info({ event: 'appliance.stopping', reason }, 'stopping');
      await appliance.audit
        .recordNow({
          action: 'appliance.stop',
          actor: 'system',
          outcome: 'success',
          reason: reasonCode(reason),
          targets: { appliance: config.applianceId },
        })
        .catch((e: unknown) => log.error({ err: e }, 'appliance.stop could not be audited'));
      const grace = config.http.shutdownGraceMs;
      const timer = setTimeout(() => {
        // requests still running get an answer (503 SHUTTING_DOWN, Retry-After) before their connection closes
        const refused = app.inFlight.refuse();
        log.warn(
          { event: 'appliance.grace_over', refused },
          'grace period over: requests still running answered 503, connections closed',
        );
        setTimeout(() => app.server.closeAllConnections(), 1000).unref();
      }, grace);
      timer.unref();
      await app.close();
      clearTimeout(timer);
      // their handlers' clean-up (an upload discarding its blob and data key) needs the database
      if (!(await app.inFlight.settled(grace)))
        log.error(
          { event: 'appliance.cleanup_unfinished' },
          'request handlers still running after the grace; closing the database anyway',
        );
      await appliance.close();
      log.info({ event: 'appliance.stopped' }, 'stopped');
      log.flush();
    })());
  return { appliance, app, url, stop };
}
