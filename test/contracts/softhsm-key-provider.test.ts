import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { createTestToken } from '../support/softhsm.js';
import { keyProviderContract } from './key-provider.js';

// SoftHSM2 loaded directly (the embedded token's path, and any vendor module's)
keyProviderContract('PKCS#11, SoftHSM2 directly', { canHang: false }, async () => {
  const t = createTestToken();
  const provider = await Pkcs11KeyProvider.open({
    module: t.module,
    tokenLabel: t.label,
    pinFile: t.pinFile,
    kekLabel: t.kekLabel,
    softhsmConfFile: t.conf,
    sessionPoolSize: 4,
    createKek: true,
    callTimeoutMs: 800,
  });
  await provider.ready();
  return { provider, wraps: true, callTimeoutMs: 800, cleanup: async () => undefined };
});
