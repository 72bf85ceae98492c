import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAppliance } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';

describe('keys wired into the appliance', () => {
  let t: TestAppliance;
  beforeAll(async () => {
    t = await createTestAppliance();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('exposes provider, data keys and field cipher, with a keys health check', async () => {
    const { keys } = t.appliance;
    await keys.provider.ready();
    const ct = await keys.fields.encrypt('users', 'carol@example.org', 'users.email:c');
    expect(await keys.fields.decrypt(ct, 'users.email:c')).toBe('carol@example.org');
    const dek = crypto.randomBytes(32);
    expect((await keys.provider.unwrap(await keys.provider.wrap(dek))).equals(dek)).toBe(true);
    expect(await t.appliance.health.find((h) => h.name === 'keys')!.check()).toEqual({ ok: true });
  });

  it('with the HSM unreachable the appliance still starts, and everything needing a key answers 503 KEYS_UNAVAILABLE', async () => {
    await t.appliance.close();
    const a = await openAppliance({
      dataDir: t.dataDir,
      env: { COFFRE_CFG_keys__tokenLabel: 'unplugged-token' },
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    try {
      expect(await a.health.find((h) => h.name === 'keys')!.check()).toMatchObject({ ok: false });
      // all four at once, each awaited at once (the HSM thread answers them together: none may go unhandled)
      const failures = await Promise.all(
        [
          a.keys.dataKeys.create('doc:y:v1'),
          a.keys.fields.encrypt('users', 'x', 'c'),
          a.keys.fields.blindIndex('email', 'x'),
          a.keys.provider.mac('audit', Buffer.from('x')),
        ].map((p) =>
          p.then(
            () => null,
            (e: unknown) => e,
          ),
        ),
      );
      for (const e of failures) expect(e).toMatchObject({ code: 'KEYS_UNAVAILABLE', httpStatus: 503, expose: true });
      const e = await a.keys.provider.ready().catch((x: unknown) => x as { message: string; hint: string });
      expect(e).toMatchObject({
        message: expect.stringContaining('CKR_TOKEN_NOT_PRESENT'),
        hint: expect.stringContaining('keys.tokenLabel'),
      });
    } finally {
      await a.close();
    }
    // and back to normal with the right configuration
    t.appliance = await openAppliance({
      dataDir: t.dataDir,
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    await t.appliance.keys.provider.ready();
  });
});
