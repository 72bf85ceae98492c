import fs from 'node:fs';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { acquireLibrary, releaseLibrary } from '../../src/keys/pkcs11/library.js';

/**
 * Invariant 3 over real HTTPS: with the HSM's token gone, everything that needs a key answers
 * 503 KEYS_UNAVAILABLE (no software fallback), and the appliance recovers by itself once it is
 * back. The token disappears the way a removed device does: its directory goes away and the
 * module is reset under the provider's feet.
 */
describe('HTTP: 503 KEYS_UNAVAILABLE while the HSM is missing', () => {
  let env: VaultEnv;
  let alice: User;
  let ws: string;
  beforeAll(async () => {
    env = await openVaultEnv();
    alice = await env.user('alice');
    ws = await env.workspace(alice);
  });
  afterAll(async () => {
    await env?.close();
  });

  it('answers 503 for uploads and cold reads, then serves again once the token is back', async () => {
    const body = crypto.randomBytes(10_000);
    const doc = await upload(env, alice, ws, 'before.bin', body);
    const { tokenDir, module, conf } = env.t.token;
    const moved = `${tokenDir}.away`;
    const count = async (t: 'data_keys' | 'vault_uploads') =>
      Number(
        (
          await env.t.appliance.db.db
            .selectFrom(t)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const keysBefore = await count('data_keys');
    const lib = acquireLibrary(module, conf);
    try {
      fs.renameSync(tokenDir, moved);
      fs.mkdirSync(tokenDir);
      lib.finalize();
      lib.initialize();
      env.t.appliance.keys.dataKeys.wipeCache();

      const up = await env.req('POST', `/api/v1/workspaces/${ws}/documents`, {
        token: alice.token,
        headers: { ...metaHeaders('during.bin'), 'content-type': 'application/octet-stream', 'content-length': '5' },
        body: Buffer.from('hello'),
      });
      expect(up.status, up.body.toString()).toBe(503);
      expect(up.json()).toMatchObject({ error: { code: 'KEYS_UNAVAILABLE' } });
      const get = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: alice.token });
      expect(get.status, get.body.toString()).toBe(503);
      expect(get.json()).toMatchObject({ error: { code: 'KEYS_UNAVAILABLE' } });
      expect(env.t.appliance.keys.provider.health().up).toBe(false);
      const pin = fs.readFileSync(env.t.token.pinFile, 'utf8').trim();
      expect(up.body.toString() + get.body.toString()).not.toContain(pin);
      // and the refused upload left nothing behind
      expect(await count('data_keys')).toBe(keysBefore);
      expect(await count('vault_uploads')).toBe(0);
    } finally {
      fs.rmSync(tokenDir, { recursive: true, force: true });
      fs.renameSync(moved, tokenDir);
      lib.finalize();
      lib.initialize();
      releaseLibrary(lib);
    }
    // back: the background reconnect picks it up without a restart
    const until = Date.now() + 15_000;
    while (!env.t.appliance.keys.provider.health().up && Date.now() < until) {
      await env.t.appliance.keys.provider.ready().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    const get = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: alice.token });
    expect(get.status, get.body.toString()).toBe(200);
    expect(get.body.equals(body)).toBe(true);
    await upload(env, alice, ws, 'after.bin', Buffer.from('back'));
  });
});
