import type { Alerter } from '../monitoring/types.js';
import type { Logger } from '../shared/logger.js';
import type { KeyEvents, KeyProvider } from './types.js';

export const KEYS_UNAVAILABLE_ALERT = 'keys.unavailable';

/**
 * Losing the HSM is never silent: `keys.unavailable` (critical) is raised as soon as the provider
 * goes down (HSM unreachable, locked, hung past keys.callTimeoutMs, or its current KEK gone) and
 * cleared (the open alert resolved) when it answers again. A provider already down when this
 * starts watching raises it at once. Returns the function that stops watching.
 */
export function alertOnKeysDown(provider: KeyProvider & KeyEvents, alerts: Alerter, log?: Logger): () => void {
  const failed = (e: unknown) => log?.error({ err: e }, 'the keys.unavailable alert could not be recorded');
  const raise = (reason: string) =>
    alerts
      .raise({ kind: KEYS_UNAVAILABLE_ALERT, severity: 'critical', message: `the HSM cannot be used (${reason}): everything that needs a key answers 503 KEYS_UNAVAILABLE until it is back` })
      .catch(failed);
  const off = provider.on((e) => {
    if (e.kind === 'down') void raise(e.reason);
    else if (e.kind === 'kek-missing') void raise(`key-encryption key ${e.label} is missing from the HSM; cached data keys were dropped`);
    else if (e.kind === 'up') void alerts.clear?.({ kind: KEYS_UNAVAILABLE_ALERT })?.catch(failed);
  });
  const h = provider.health();
  if (!h.up) void raise(h.lastError ?? 'HSM unavailable');
  return off;
}
