import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import type { Auditor } from '../audit/types.js';
import type { VaultConfig } from '../config/sections/vault.js';
import type { VaultSchema } from '../db/index.js';
import type { JobDefinition, Scheduler } from '../jobs/index.js';
import type { DataKeys, FieldCipher } from '../keys/index.js';
import type { EncryptedBlobs } from '../blobs/index.js';
import type { Alerter } from '../monitoring/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { policyAccess, type WorkspacePolicy } from './access.js';
import { vaultJobs } from './jobs.js';
import { vaultRoutes } from './routes.js';
import { sealedBlobs } from './sealed.js';
import { VaultService } from './service.js';
import { vaultVerifyRoutes } from './verify-routes.js';
import type { ActorNames, ReceiptIssuer, ReportKeeper, ReportSigner, ReportStamper, RetentionGuard } from './types.js';

export interface VaultWiring {
  db: Kysely<VaultSchema>;
  clock: Clock;
  log: Logger;
  config: VaultConfig;
  keys: { dataKeys: DataKeys; fields: FieldCipher; blobs: EncryptedBlobs };
  policy: WorkspacePolicy;
  audit: Auditor;
  alerts: Alerter;
  retention?: RetentionGuard;
  signer?: ReportSigner;
  actors?: ActorNames;
  receipts?: ReceiptIssuer;
  stamps?: ReportStamper;
  reports?: ReportKeeper;
  /** runs the whole-store integrity control on demand (POST /vault/verify); without it, no such route */
  scheduler?: Scheduler;
}

export interface Vault {
  service: VaultService;
  /** API plugin for /api/v1 */
  api: FastifyPluginAsync;
  jobs: JobDefinition[];
}

/** Builds the vault from the appliance's modules (composition for main.ts). */
export function wireVault(o: VaultWiring): Vault {
  const service = new VaultService({
    db: o.db,
    clock: o.clock,
    log: o.log.child({ module: 'vault' }),
    config: o.config,
    dataKeys: o.keys.dataKeys,
    fields: o.keys.fields,
    blobs: sealedBlobs(o.keys.blobs),
    access: policyAccess(o.policy, o.db),
    audit: o.audit,
    alerts: o.alerts,
    ...(o.retention ? { retention: o.retention } : {}),
    ...(o.signer ? { signer: o.signer } : {}),
    ...(o.actors ? { actors: o.actors } : {}),
    ...(o.receipts ? { receipts: o.receipts } : {}),
    ...(o.stamps ? { stamps: o.stamps } : {}),
    ...(o.reports ? { reports: o.reports } : {}),
  });
  const api: FastifyPluginAsync = async (app) => {
    await app.register(vaultRoutes, { vault: service, maxUploadBytes: o.config.maxUploadBytes });
    if (o.scheduler) await app.register(vaultVerifyRoutes(o.scheduler));
  };
  return { service, api, jobs: vaultJobs(service, o.config.scrubBytesPerSecond) };
}
