import type { Kysely } from 'kysely';
import type { KeysConfig } from '../config/sections/keys.js';
import type { KeysSchema } from '../db/index.js';
import type { ChangeBus } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { HealthCheck } from '../http/index.js';
import { DbDataKeys } from './data-keys.js';
import { DekCache } from './dek-cache.js';
import { DataKeyFieldCipher } from './field-cipher.js';
import { createKeyProvider, type AdminKeyProvider } from './registry.js';
import type { FieldCipher, KeyProvider } from './types.js';
import type { Alerter } from '../monitoring/types.js';
import { alertOnKeysDown } from './alerts.js';
import { KeyRotation } from './rotation.js';
import type { JobDefinition } from '../jobs/types.js';

export type * from './types.js';
export { keysErrors } from './errors.js';
export { DbDataKeys } from './data-keys.js';
export { DataKeyFieldCipher } from './field-cipher.js';
export type { AdminKeyProvider } from './registry.js';
export { KeyRotation, type RotationResult, type KekVersionState } from './rotation.js';
export { alertOnKeysDown, KEYS_UNAVAILABLE_ALERT } from './alerts.js';
export { embeddedTokenNotice, type EmbeddedTokenNotice } from './embedded.js';

/**
 * The keys module as the rest of the appliance sees it (Appliance.keys):
 * - `provider`: the customer's HSM (wrap/unwrap/mac/verifyMac/health; KEK administration);
 * - `dataKeys`: envelope encryption (DEKs wrapped by the KEK, bounded cache);
 * - `fields`: confidential columns and blind indexes.
 * (Document bodies: src/blobs/, which takes `dataKeys`.)
 * Anything here that needs the HSM fails with 503 KEYS_UNAVAILABLE while it is down.
 */
export interface Keys {
  provider: AdminKeyProvider;
  dataKeys: DbDataKeys;
  fields: FieldCipher;
  rotation: KeyRotation;
  /** jobs to register with the scheduler: keys.rotate, keys.destroy-retired */
  jobs: JobDefinition[];
  /** readiness of the keys component (see `keysHealthCheck`) */
  health: HealthCheck;
  /** raises `keys.unavailable` while the HSM is down (src/keys/alerts.ts); returns the unsubscribe (awaits alerts in flight) */
  alertOn(alerts: Alerter): () => Promise<void>;
  close(): Promise<void>;
}

/**
 * The keys component's readiness check (`HealthCheck`, name `keys`): ok while the HSM answers, its
 * current KEK is present and no call is hanging; otherwise the detail says why (CKR code or
 * timeout, never a secret). Cheap: it reads the provider's state, it makes no HSM call (the
 * provider probes the HSM every keys.probeIntervalMs by itself).
 */
export function keysHealthCheck(provider: Pick<KeyProvider, 'health'>): HealthCheck {
  return {
    name: 'keys',
    check: async () => {
      const h = provider.health();
      return { ok: h.up, ...(h.up ? {} : { detail: h.lastError ?? 'HSM unavailable' }) };
    },
  };
}

export async function openKeys(o: {
  config: KeysConfig;
  db: Kysely<KeysSchema>;
  clock: Clock;
  log?: Logger;
  /** several nodes: destroyed keys and rotations announced to every node (src/db/notify.ts) */
  bus?: ChangeBus;
}): Promise<Keys> {
  const provider = await createKeyProvider(o.config, { log: o.log });
  const cache = new DekCache(o.config.dekCacheSize, o.config.dekCacheTtlMs, o.clock);
  const sweep = setInterval(() => cache.sweep(), Math.max(1_000, Math.min(60_000, o.config.dekCacheTtlMs))).unref();
  // the customer pulled a KEK: no cached data key may outlive it
  const offMissing = provider.on((e) => {
    if (e.kind !== 'kek-missing') return;
    cache.clear();
    o.log?.warn(
      { event: 'keys.cache_dropped', label: e.label },
      'a key-encryption key is missing from the HSM: cached data keys dropped',
    );
  });
  const dataKeys = new DbDataKeys(o.db, provider, cache, o.clock, o.bus);
  const unfollow = dataKeys.follow();
  const fields = new DataKeyFieldCipher(dataKeys);
  const rotation = new KeyRotation(o.db, provider, o.clock, {
    graceDays: o.config.retiredKekGraceDays,
    batchSize: o.config.rotationBatchSize,
    concurrency: o.config.sessionPoolSize,
    log: o.log,
    changed: () => dataKeys.announceAll(),
  });
  return {
    provider,
    dataKeys,
    fields,
    rotation,
    jobs: rotation.jobs(),
    health: keysHealthCheck(provider),
    alertOn: (alerts) => alertOnKeysDown(provider, alerts, o.log),
    close: async () => {
      offMissing();
      unfollow();
      clearInterval(sweep);
      cache.clear();
      await provider.close();
    },
  };
}
export { macCreating } from './mac.js';
