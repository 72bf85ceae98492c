import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { acquireLibrary, releaseLibrary } from '../../src/keys/pkcs11/library.js';
import { SftpTarget } from '../../src/backup/targets/sftp.js';

/**
 * Failures at either end: a full target disk, refused authentication, the HSM down.
 * Each time: a clear error code, an alert, older backups untouched, nothing complete-looking left,
 * and the next run works.
 */
let e: BackupEnv;
beforeAll(async () => {
  e = await openBackupEnv({}, { small: { tiny: '2m' } });
  await e.upload('ledger.xlsx', randomDoc(700_000));
  await e.addTarget('dr');
  expect((await e.service.run({ actor: 'job:backup' })).ok).toBe(true);
});
afterAll(async () => {
  await e?.close();
});

const run = () => e.service.run({ actor: 'job:backup' });
const alertCount = async (kind: string) => (await e.alerts()).filter((k) => k === kind).length;

describe('backup failures', { timeout: 180_000 }, () => {
  it('a full disk at the target: TARGET_FULL before a byte of the backup is sent, other targets still backed up', async () => {
    await e.service.addTarget(
      {
        name: 'tiny',
        type: 'sftp',
        url: e.sshd.url('tiny'),
        ...LYON,
        hostKey: e.sshd.hostKeyFingerprint,
        identityFile: e.sshd.identityFile,
      },
      'local:test',
    );
    const before = await alertCount('backup.failed');
    e.env.clock.advance(60_000);
    const err = (await run().catch((x: unknown) => x)) as {
      code: string;
      details: { targets: { target: string; ok: boolean; code?: string }[] };
    };
    expect(err.code).toBe('TARGET_FULL');
    expect(err.details.targets).toEqual([
      expect.objectContaining({ target: 'dr', ok: true }),
      expect.objectContaining({ target: 'tiny', ok: false, code: 'TARGET_FULL' }),
    ]);
    expect(await alertCount('backup.failed')).toBe(before + 1);
    // at the (namespaced) tmpfs, seen through sftp: only the marker
    const t = new SftpTarget({
      host: e.sshd.host,
      port: e.sshd.port,
      username: e.sshd.user,
      dir: `${e.sshd.root}/tiny`,
      hostKey: e.sshd.hostKeyFingerprint,
      privateKey: fs.readFileSync(e.sshd.identityFile),
    });
    expect((await t.list('')).map((x) => x.name)).toEqual(['.coffre-target']);
    await t.close();
    await e.service.removeTarget('tiny', 'local:test');
  });

  it('authentication refused: TARGET_AUTH, an alert, older backups untouched; the next run works', async () => {
    const held = atTarget(e.targetDir).complete;
    const keys = `${e.sshd.root}/../authorized_keys`;
    const saved = fs.readFileSync(keys);
    fs.writeFileSync(keys, '');
    try {
      e.env.clock.advance(60_000);
      await expect(run()).rejects.toMatchObject({ code: 'TARGET_AUTH' });
    } finally {
      fs.writeFileSync(keys, saved);
    }
    expect(atTarget(e.targetDir).complete).toEqual(held);
    e.env.clock.advance(60_000);
    expect((await run()).ok).toBe(true);
  });

  it('HSM down: KEYS_UNAVAILABLE before anything is written; an alert; the next run works once it is back', async () => {
    const held = atTarget(e.targetDir);
    const { tokenDir, module, conf } = e.env.t.token;
    const moved = `${tokenDir}.away`;
    const lib = acquireLibrary(module, conf);
    try {
      fs.renameSync(tokenDir, moved);
      fs.mkdirSync(tokenDir);
      lib.finalize();
      lib.initialize();
      e.env.clock.advance(60_000);
      await expect(run()).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });
      expect(atTarget(e.targetDir)).toEqual(held);
      expect(await e.alerts()).toContain('backup.failed');
    } finally {
      fs.rmSync(tokenDir, { recursive: true, force: true });
      fs.renameSync(moved, tokenDir);
      lib.finalize();
      lib.initialize();
      releaseLibrary(lib);
    }
    const provider = e.env.t.appliance.keys.provider;
    const until = Date.now() + 60_000;
    while (!provider.health().up && Date.now() < until) {
      await provider.ready().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    e.env.clock.advance(60_000);
    expect((await run()).ok).toBe(true);
  });
});
