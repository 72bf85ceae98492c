import type { KeysConfig } from '../config/sections/keys.js';
import type { Keys, KekAttributes, KekVersionState } from './index.js';
import { embeddedTokenNotice } from './embedded.js';

/** the state `coffre keys status` prints; throws KEYS_UNAVAILABLE (503) when the HSM cannot be used */
export async function keyStatus(keys: Keys, config: KeysConfig) {
  const { provider, rotation } = keys;
  await provider.ready();
  await rotation.sync();
  const token = await provider.token();
  const current = await provider.currentKekVersion();
  const latencyMs = Math.round((await provider.ping()) * 1000) / 1000;
  const versions: (KekVersionState & { attributes?: KekAttributes })[] = [];
  for (const v of await rotation.versions())
    versions.push({ ...v, ...(v.inHsm ? { attributes: await provider.kekAttributes(v.version) } : {}) });
  return {
    up: true,
    module: token.module,
    slot: token.slotId,
    token: { label: token.label, serial: token.serial, manufacturer: token.manufacturer, model: token.model },
    kek: { labelPrefix: config.kekLabel, currentVersion: current, currentLabel: `${config.kekLabel}-${current}` },
    versions,
    latencyMs,
    retiredKekGraceDays: config.retiredKekGraceDays,
    ...((n) => (n ? { embeddedToken: n } : {}))(embeddedTokenNotice(config)),
  };
}
