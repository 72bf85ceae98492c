import type { KeysConfig } from '../config/sections/keys.js';
import type { Logger } from '../shared/logger.js';
import { Pkcs11KeyProvider } from './pkcs11/provider.js';
import type { KekAdmin, KeyEvents, KeyProvider, SigningKeys } from './types.js';

export type AdminKeyProvider = KeyProvider & KekAdmin & KeyEvents & SigningKeys;

/**
 * The one place that maps `keys.type` to an implementation. There is deliberately
 * no software provider (invariant 3).
 */
export async function createKeyProvider(
  cfg: KeysConfig,
  o: { log?: Logger | undefined; createKek?: boolean } = {},
): Promise<AdminKeyProvider> {
  switch (cfg.type) {
    case 'pkcs11':
      return Pkcs11KeyProvider.open({
        module: cfg.module,
        slot: cfg.slot,
        tokenLabel: cfg.tokenLabel,
        pinFile: cfg.pinFile,
        kekLabel: cfg.kekLabel,
        softhsmConfFile: cfg.softhsmConfFile,
        sessionPoolSize: cfg.sessionPoolSize,
        callTimeoutMs: cfg.callTimeoutMs,
        connectTimeoutMs: cfg.connectTimeoutMs,
        probeIntervalMs: cfg.probeIntervalMs,
        wrapMechanism: cfg.wrapMechanism,
        createKek: o.createKek ?? false,
        log: o.log,
      });
  }
}
