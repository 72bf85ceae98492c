import type { Alerter } from '../monitoring/types.js';
import type { Logger } from '../shared/logger.js';
import type { KeyEvents, KeyProvider } from './types.js';

export const KEYS_UNAVAILABLE_ALERT = 'keys.unavailable';

/**
 * Losing the HSM is never silent: `keys.unavailable` (critical) is raised as soon as the provider
 * goes down (HSM unreachable, locked, hung past keys.callTimeoutMs, or its current KEK gone) and
 * cleared (the open alert resolved) when it answers again. A provider already down when this
 * starts watching raises it at once. Returns the function that stops watching (it waits for the
 * alerts being recorded, so that the audit trail is still open for them).
 */
export function alertOnKeysDown(provider: KeyProvider & KeyEvents, alerts: Alerter, log?: Logger): () => Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown> | undefined) => {
    if (!p) return;
    const q = p
      .catch((e: unknown) => log?.error({ err: e }, 'the keys.unavailable alert could not be recorded'))
      .finally(() => inFlight.delete(q));
    inFlight.add(q);
  };
  const raise = (reason: string) =>
    track(
      alerts.raise({
        kind: KEYS_UNAVAILABLE_ALERT,
        severity: 'critical',
        message: `the HSM cannot be used (${reason}): everything that needs a key answers 503 KEYS_UNAVAILABLE until it is back`,
      }),
    );
  const off = provider.on((e) => {
    if (e.kind === 'down') raise(e.reason);
    else if (e.kind === 'kek-missing')
      raise(`key-encryption key ${e.label} is missing from the HSM; cached data keys were dropped`);
    else if (e.kind === 'up') track(alerts.clear?.({ kind: KEYS_UNAVAILABLE_ALERT }));
  });
  const h = provider.health();
  if (!h.up) raise(h.lastError ?? 'HSM unavailable');
  return async () => {
    off();
    await Promise.all([...inFlight]);
  };
}
