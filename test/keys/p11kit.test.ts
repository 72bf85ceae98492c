import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { createTestToken } from '../support/softhsm.js';
import { P11KIT_CLIENT, startP11KitServer } from '../support/p11kit.js';

/**
 * An HSM that goes away while serving and comes back, like a network HSM: SoftHSM2 behind
 * `p11-kit server`, used through p11-kit's client module (Debian p11-kit, p11-kit-modules).
 *
 * p11-kit 0.24's RPC forwards only the mechanisms it can marshal (AES key generation, ECB, HMAC…,
 * not CKM_AES_KEY_WRAP_PAD or CKM_AES_GCM), so the KEK is created on the token directly and the
 * round trips here are HMACs (`mac`/`verifyMac`, the audit checkpoints' path): what is under test is
 * the connection handling, which is the same for every operation.
 */
const CLIENT = P11KIT_CLIENT;

describe('HSM behind p11-kit server, killed and restarted', () => {
  const servers: ChildProcess[] = [];
  const killGroup = (p: ChildProcess) => {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  afterAll(() => servers.forEach(killGroup));

  it('is picked up again without restarting the process, and fails closed while it is gone', async () => {
    expect(fs.existsSync(CLIENT), `${CLIENT} (Debian p11-kit-modules) is required`).toBe(true);
    const t = createTestToken();
    // KEK created directly on the token
    const direct = await Pkcs11KeyProvider.open({
      module: t.module,
      tokenLabel: t.label,
      pinFile: t.pinFile,
      kekLabel: t.kekLabel,
      softhsmConfFile: t.conf,
      sessionPoolSize: 2,
      createKek: true,
    });
    await direct.ready();
    await direct.close();

    const sock = path.join(t.dir, `p11-${crypto.randomBytes(4).toString('hex')}.sock`);
    const start = async () => {
      const p = await startP11KitServer(t, sock, ['ignore', 'pipe', 'pipe']);
      servers.push(p);
      return p;
    };
    let server = await start();
    // read by p11-kit's client module at C_Initialize (also at each reconnect)
    process.env.P11_KIT_SERVER_ADDRESS = `unix:path=${sock}`;
    const hsm = await Pkcs11KeyProvider.open({
      module: CLIENT,
      tokenLabel: t.label,
      pinFile: t.pinFile,
      kekLabel: t.kekLabel,
      sessionPoolSize: 2,
      backoff: { initialMs: 50, maxMs: 400 },
    });
    try {
      await hsm.ready();
      expect(await hsm.kekAttributes(1)).toMatchObject({ extractable: false, sensitive: true });
      const data = Buffer.from('checkpoint');
      const mac = await hsm.mac('audit', data);
      expect(await hsm.verifyMac('audit', data, mac)).toBe(true);

      // the HSM goes away
      const exited = new Promise((r) => server.once('exit', r));
      killGroup(server); // the server and its per-connection children
      await exited;
      fs.rmSync(sock, { force: true });
      const e = await hsm.mac('audit', data).then(
        () => undefined,
        (x: unknown) => x as { code: string; httpStatus: number; message: string },
      );
      expect(e).toMatchObject({ code: 'KEYS_UNAVAILABLE', httpStatus: 503 });
      expect(e!.message).toMatch(/CKR_[A-Z_]+/);
      expect(hsm.health().up).toBe(false);
      // no software fallback: every call keeps failing while it is gone
      await expect(hsm.verifyMac('audit', data, mac)).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });
      await new Promise((r) => setTimeout(r, 300));
      await expect(hsm.mac('audit', data)).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });

      // it comes back: picked up by the background reconnect, same process, same provider
      server = await start();
      const until = Date.now() + 10_000;
      while (!hsm.health().up && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(hsm.health()).toMatchObject({ up: true });
      expect(hsm.health().reconnects).toBeGreaterThanOrEqual(1);
      expect((await hsm.mac('audit', data)).equals(mac)).toBe(true);
      expect(await hsm.verifyMac('audit', data, mac)).toBe(true);
    } finally {
      await hsm.close();
    }
  });
});
