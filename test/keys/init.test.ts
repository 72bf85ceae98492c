import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openAppliance } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';

/**
 * `coffre init` with no HSM configured: the default SoftHSM2 token under the data dir. This file
 * uses the data dir's own SoftHSM2 configuration, so it must not use test/support/softhsm.ts (one
 * SoftHSM2 configuration per process).
 */
describe('coffre init: default SoftHSM2 token and KEK', () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-init-')), 'data');
  afterAll(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  it('creates the token with a random PIN in a 0600 file and the KEK inside it; the appliance opens and uses it', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['node', 'coffre', 'init', '--data-dir', dir, '--json'], {
      out: (t) => void out.push(t),
      err: (t) => void err.push(t),
    });
    expect(err.join('')).not.toMatch(/KEYS_|INTERNAL/);
    expect(code).toBe(0);
    expect(JSON.parse(out.join(''))).toHaveProperty('url');

    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.keys).toMatchObject({
      type: 'pkcs11',
      module: '/usr/lib/softhsm/libsofthsm2.so',
      pinFile: 'secrets/hsm-pin',
      softhsmConfFile: 'softhsm/softhsm2.conf',
      kekLabel: 'coffre-kek',
    });
    expect(cfg.keys.tokenLabel).toMatch(/^coffre-[0-9a-f]{8}$/);
    const pinFile = path.join(dir, 'secrets', 'hsm-pin');
    expect(fs.statSync(pinFile).mode & 0o777).toBe(0o600);
    const pin = fs.readFileSync(pinFile, 'utf8').trim();
    expect(pin.length).toBeGreaterThanOrEqual(32);
    // the PIN appears nowhere but its file
    expect(out.join('') + err.join('')).not.toContain(pin);
    expect(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).not.toContain(pin);
    expect(fs.readFileSync(path.join(dir, 'softhsm', 'softhsm2.conf'), 'utf8')).toContain(
      path.join(dir, 'softhsm', 'tokens'),
    );
    expect(fs.readdirSync(path.join(dir, 'softhsm', 'tokens')).length).toBe(1);

    const a = await openAppliance({ dataDir: dir, log: createLogger({ level: 'silent', destination: 'stderr' }) });
    try {
      await a.keys.provider.ready();
      expect(await a.keys.provider.kekVersions()).toEqual([1]);
      expect(await a.keys.provider.kekAttributes(1)).toMatchObject({
        label: 'coffre-kek-1',
        extractable: false,
        sensitive: true,
        neverExtractable: true,
      });
      expect(await a.keys.provider.token()).toMatchObject({ label: cfg.keys.tokenLabel });
      const { keyId, key } = await a.keys.dataKeys.create('doc:x:v1');
      a.keys.dataKeys.wipeCache();
      expect((await a.keys.dataKeys.get(keyId)).equals(key)).toBe(true);
      expect(await a.health.find((h) => h.name === 'keys')!.check()).toEqual({ ok: true });
    } finally {
      await a.close();
    }
  });

  it('a failed init leaves nothing behind (no token, no PIN file)', async () => {
    const bad = path.join(path.dirname(dir), 'bad');
    const err: string[] = [];
    const code = await main(['node', 'coffre', 'init', '--data-dir', bad, '--hostname', 'bad host!'], {
      out: () => undefined,
      err: (t) => void err.push(t),
    });
    expect(code).toBe(2);
    expect(fs.existsSync(path.join(bad, 'secrets'))).toBe(false);
  });
});
