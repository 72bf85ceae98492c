import { isAppError } from '../shared/errors.js';
import type { KeyProvider } from './types.js';

/**
 * HMAC under a named HSM key, creating the key first when it does not exist yet: the creation (a
 * token write) runs under the slow deadline, the MAC itself under the per-call one.
 */
export async function macCreating(
  keys: Pick<KeyProvider, 'mac' | 'createMacKey'>,
  keyName: string,
  data: Buffer,
): Promise<Buffer> {
  try {
    return await keys.mac(keyName, data, { create: false });
  } catch (e) {
    if (!isAppError(e) || e.code !== 'KEY_DESTROYED') throw e;
    await keys.createMacKey(keyName);
    return keys.mac(keyName, data, { create: false });
  }
}
