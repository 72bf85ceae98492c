import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { createTestToken } from '../support/softhsm.js';
import { keyProviderContract } from './key-provider.js';
import { P11KIT_CLIENT, signalGroup, startP11KitServer } from '../support/p11kit.js';

const CLIENT = P11KIT_CLIENT;

// the same SoftHSM2 token behind `p11-kit server` (a network HSM's shape), through p11-kit's client
// module; Debian's p11-kit 0.24 does not forward CKM_AES_KEY_WRAP_PAD nor CKM_AES_GCM (wraps: false)
keyProviderContract('PKCS#11, SoftHSM2 through p11-kit server', { canHang: true }, async () => {
  if (!fs.existsSync(CLIENT)) throw new Error(`${CLIENT} (Debian p11-kit-modules) is required`);
  const t = createTestToken();
  const direct = await Pkcs11KeyProvider.open({
    module: t.module,
    tokenLabel: t.label,
    pinFile: t.pinFile,
    kekLabel: t.kekLabel,
    softhsmConfFile: t.conf,
    sessionPoolSize: 2,
    createKek: true,
  });
  await direct.ready(); // the KEK, made on the token itself
  await direct.close();
  const sock = path.join(t.dir, `p11-${crypto.randomBytes(4).toString('hex')}.sock`);
  const server = await startP11KitServer(t, sock);
  const group = (sig: NodeJS.Signals) => signalGroup(server, sig);
  process.env.P11_KIT_SERVER_ADDRESS = `unix:path=${sock}`;
  const provider = await Pkcs11KeyProvider.open({
    module: CLIENT,
    tokenLabel: t.label,
    pinFile: t.pinFile,
    kekLabel: t.kekLabel,
    sessionPoolSize: 2,
    callTimeoutMs: 500,
    probeIntervalMs: 200,
    backoff: { initialMs: 50, maxMs: 400 },
  });
  await provider.ready();
  return {
    provider,
    wraps: false,
    callTimeoutMs: 500,
    hang: { stop: async () => group('SIGSTOP'), resume: async () => group('SIGCONT') },
    cleanup: async () => {
      group('SIGCONT');
      group('SIGKILL');
    },
  };
});
