import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { runCli } from '../support/cli.js';
import { PathTarget } from '../../src/backup/targets/path.js';
import { readArchive, readSidecar, sinkTo } from '../../src/backup/reader.js';
import { sessionKeyInput, sessionKeyName } from '../../src/backup/format.js';
import { DAY_MS } from '../../src/backup/retention.js';

/**
 * What "destroyed" means for a backup: the catalogue says so only once the files are verified
 * gone from the right directory (an unmounted share is not an empty one), and no copy of the
 * files restores it, because its key object in the HSM is gone. A mounted path target stands in
 * for a network share; the fake clock moves days.
 */
const MONDAY_0230 = (() => {
  const d = new Date();
  d.setUTCHours(2, 30, 0, 0);
  d.setUTCDate(d.getUTCDate() + ((8 - d.getUTCDay()) % 7 || 7));
  return d.getTime();
})();

let e: BackupEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-destroy-'));
const share = path.join(tmp, 'share');
const away = path.join(tmp, 'share-unmounted');
beforeAll(async () => {
  e = await openBackupEnv();
  e.env.clock.set(MONDAY_0230);
  await e.upload('payroll.xlsx', randomDoc(300_000));
  fs.mkdirSync(share);
  await e.service.addTarget({ name: 'share', type: 'path', url: `file://${share}`, ...LYON }, 'local:test');
});
afterAll(async () => {
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const db = () => e.env.t.appliance.db.db;
const stateOf = async (id: string) =>
  (await db().selectFrom('backups').select(['state', 'wrapped_key']).where('id', '=', id).executeTakeFirstOrThrow())
    .state;
const run = () => e.service.run({ actor: 'job:backup' });

describe('zombie backups', { timeout: 240_000 }, () => {
  it('a run at an unmounted share neither marks expired backups deleted nor touches the target; the next good run deletes them, checked', async () => {
    const first = (await run()).targets[0]!.backupId!;
    // the share is unmounted: its directory is gone; eight days pass
    fs.renameSync(share, away);
    e.env.clock.advance(8 * DAY_MS);
    await expect(run()).rejects.toMatchObject({ code: 'TARGET_UNREACHABLE' });
    // destroyed here (its HSM key is gone), but not claimed deleted: its files were never seen gone
    expect(await stateOf(first)).toBe('delete-pending');
    expect(await e.alerts()).toContain('backup.delete-failed');
    // the watchdog cannot finish it either, and says so again
    const before = (await e.alerts()).filter((k) => k === 'backup.delete-failed').length;
    const w = await e.service.watchdog({ actor: 'job:backup.watchdog' });
    expect(w.destroyed).toEqual([]);
    expect(await stateOf(first)).toBe('delete-pending');
    expect((await e.alerts()).filter((k) => k === 'backup.delete-failed').length).toBeGreaterThan(before);
    // mounted again: the files are there; the next run that succeeds there deletes them and checks
    fs.renameSync(away, share);
    expect(atTarget(share).complete).toEqual([first]);
    e.env.clock.advance(3600_000);
    const ok = await run();
    expect(ok.ok).toBe(true);
    expect(atTarget(share).complete).toEqual([ok.targets[0]!.backupId]);
    expect(await stateOf(first)).toBe('deleted');
  });

  it('a destroyed backup put back at the target (a share snapshot restored) is deleted again', async () => {
    const [current] = atTarget(share).complete;
    const copy = path.join(tmp, 'copy-of-current');
    fs.cpSync(path.join(share, current!), copy, { recursive: true });
    e.env.clock.advance(7 * DAY_MS); // same weekday: the next run replaces it
    const next = await run();
    expect(next.targets[0]!.deleted).toEqual([{ id: current, reason: 'replaced' }]);
    fs.cpSync(copy, path.join(share, current!), { recursive: true });
    e.env.clock.advance(DAY_MS);
    await run();
    expect(atTarget(share).complete).not.toContain(current);
    expect(await stateOf(current!)).toBe('deleted');
  });
});

describe('a copy of the target does not restore a destroyed backup', { timeout: 240_000 }, () => {
  it("retention destroys a backup; `coffre restore` of a copy made before, with the appliance's own HSM, is refused and nothing in it decrypts", async () => {
    const id = atTarget(share).complete.at(-1)!;
    const copyRoot = path.join(tmp, 'dr-site-snapshot');
    fs.mkdirSync(copyRoot);
    fs.cpSync(path.join(share, id), path.join(copyRoot, id), { recursive: true });
    fs.cpSync(path.join(share, '.coffre-target'), path.join(copyRoot, '.coffre-target'));
    // the copy restores while the backup lives (the test's own premise)
    const keys = e.env.t.appliance.keys.provider;
    const t = new PathTarget(copyRoot);
    const { sidecar } = await readSidecar(t, id, id);
    expect(sidecar.wrappedKey).toBeUndefined();
    const live = await keys.mac(sessionKeyName(id), sessionKeyInput(id, sidecar.sessionKey!.nonce), { create: false });
    const dbFile = path.join(tmp, 'live.db');
    await readArchive({
      target: t,
      dir: id,
      sidecar,
      key: live,
      label: id,
      onMember: sinkTo({ 'db/coffre.db': dbFile }),
    });
    expect(fs.statSync(dbFile).size).toBeGreaterThan(0);
    // eight days later the backup is past its promised life: retention destroys it
    e.env.clock.advance(8 * DAY_MS);
    await run();
    expect(await stateOf(id)).toBe('deleted');
    expect(atTarget(share).complete).not.toContain(id);
    // restore of the copy with this appliance's HSM: refused, no directory left
    const keysFile = path.join(tmp, 'keys.json');
    fs.writeFileSync(keysFile, JSON.stringify(e.env.t.token.section));
    const newDir = path.join(tmp, 'restored');
    const r = await runCli([
      'restore',
      '--from',
      `file://${copyRoot}`,
      '--backup',
      id,
      '--data-dir',
      newDir,
      '--keys',
      keysFile,
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^BACKUP_DESTROYED: backup \S+ was destroyed/m);
    expect(fs.existsSync(newDir)).toBe(false);
    // nothing in the copy decrypts: the sidecar names a key the HSM no longer holds, and a key
    // of that name made afresh opens nothing
    await expect(
      keys.mac(sessionKeyName(id), sessionKeyInput(id, sidecar.sessionKey!.nonce), { create: false }),
    ).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    await keys.createMacKey(sessionKeyName(id));
    const fresh = await keys.mac(sessionKeyName(id), sessionKeyInput(id, sidecar.sessionKey!.nonce), { create: false });
    expect(fresh.equals(live)).toBe(false);
    await expect(
      readArchive({ target: t, dir: id, sidecar, key: fresh, label: id, onMember: sinkTo({}) }),
    ).rejects.toThrow();
    await keys.destroyMacKey(sessionKeyName(id));
  });
});

describe('the missed-backup alarm', { timeout: 240_000 }, () => {
  it('tracks the newest completed backup: re-verifying an old backup does not silence it', async () => {
    const id = (await run()).targets[0]!.backupId!;
    expect((await e.service.watchdog({ actor: 'job:backup.watchdog' })).overdue).toBe(false);
    e.env.clock.advance(72 * 3600_000);
    // the weekly verification (or an operator) reads the 72-hour-old backup back: still no new backup
    await e.service.verifyAll({ actor: 'job:backup.verify' });
    await e.service.verify(id, { actor: 'local:test' });
    const w = await e.service.watchdog({ actor: 'job:backup.watchdog' });
    expect(w.overdue).toBe(true);
    expect(w.lastCompletedAt).toBe(e.env.clock.nowMs() - 72 * 3600_000);
    const overdue = await db()
      .selectFrom('alerts')
      .select(['message', 'state'])
      .where('kind', '=', 'backup.overdue')
      .where('last_at', '=', e.env.clock.nowMs())
      .executeTakeFirstOrThrow();
    expect(overdue).toEqual({
      state: 'open',
      message: expect.stringMatching(/^no new backup completed at share for 72\.0 h/),
    });
    await run();
    expect((await e.service.watchdog({ actor: 'job:backup.watchdog' })).overdue).toBe(false);
  });

  it('per target: one target failing for 30 hours raises it although another target is backed up', async () => {
    const other = path.join(tmp, 'second-share');
    fs.mkdirSync(other);
    await e.service.addTarget({ name: 'share2', type: 'path', url: `file://${other}`, ...LYON }, 'local:test');
    expect((await run()).ok).toBe(true);
    fs.renameSync(other, `${other}-unmounted`);
    e.env.clock.advance(30 * 3600_000);
    await expect(run()).rejects.toMatchObject({ code: 'TARGET_UNREACHABLE' });
    const w = await e.service.watchdog({ actor: 'job:backup.watchdog' });
    expect(w.overdue).toBe(true);
    fs.renameSync(`${other}-unmounted`, other);
    expect((await run()).ok).toBe(true);
    expect((await e.service.watchdog({ actor: 'job:backup.watchdog' })).overdue).toBe(false);
  });
});
