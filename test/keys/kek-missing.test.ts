import fs from 'node:fs';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { acquireLibrary, pk } from '../../src/keys/pkcs11/library.js';
import { findSlot } from '../../src/keys/pkcs11/token.js';

async function text(r: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

/**
 * The customer pulls the key: the KEK is destroyed in the HSM while the appliance runs with data
 * keys in its cache. Without any request, the provider's probe notices within
 * keys.probeIntervalMs: cached data keys are dropped at once (a document that was readable from
 * the cache is not any more), the alert keys.unavailable is raised, and the keys health check says why.
 */
describe('the KEK is pulled from the HSM', { timeout: 120_000 }, () => {
  let t: TestAppliance;
  beforeAll(async () => {
    t = await createTestAppliance({ env: { COFFRE_CFG_keys__probeIntervalMs: '200' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('drops the cached data keys at once, alerts, and reports it in the health check', async () => {
    const a = t.appliance;
    const body = `secret ${crypto.randomBytes(8).toString('hex')}`;
    const b = await a.blobs.put({ objectId: 'pulled', version: 1 }, Readable.from([Buffer.from(body)]));
    const ref = { objectId: 'pulled', version: 1, blobId: b.blobId };
    expect(await text(await a.blobs.get(ref))).toBe(body); // its data key is cached
    expect(await a.keys.health.check()).toEqual({ ok: true });

    // the key is destroyed in the HSM by someone else (another PKCS#11 user of the same token)
    const lib = acquireLibrary(t.token.module, t.token.conf);
    const { handle } = findSlot(lib, { tokenLabel: t.token.label });
    const s = lib.p.C_OpenSession(handle, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION);
    try {
      try {
        lib.p.C_Login(s, pk.CKU_USER, fs.readFileSync(t.token.pinFile, 'utf8').trim());
      } catch {
        /* already logged in by the appliance (one login per token and process) */
      }
      lib.p.C_FindObjectsInit(s, [{ type: pk.CKA_LABEL, value: 'coffre-kek-1' }]);
      const found = lib.p.C_FindObjects(s, 4);
      lib.p.C_FindObjectsFinal(s);
      expect(found).toHaveLength(1);
      lib.p.C_DestroyObject(s, found[0]!);
    } finally {
      lib.p.C_CloseSession(s);
    }
    const t0 = performance.now();
    for (const until = Date.now() + 5_000; a.keys.provider.health().up && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 20));
    const noticedMs = performance.now() - t0;
    expect(a.keys.provider.health().up).toBe(false);
    expect(noticedMs).toBeLessThan(2_000);
    // the cache is gone: the document that was served from it now needs the HSM, which lacks the key
    await expect(a.blobs.get(ref).then(text)).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });
    expect(await a.keys.health.check()).toMatchObject({ ok: false, detail: expect.stringMatching(/coffre-kek-1/) });
    const alerts = async () =>
      await a.db.db
        .selectFrom('alerts')
        .select(['kind', 'state', 'message'])
        .where('kind', '=', 'keys.unavailable')
        .execute();
    for (const until = Date.now() + 5_000; (await alerts()).length === 0 && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 50));
    expect(await alerts()).toMatchObject([{ kind: 'keys.unavailable', state: 'open' }]);
    expect((await alerts())[0]!.message).toMatch(/coffre-kek-1/);
  });
});
