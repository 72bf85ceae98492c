import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { runCli } from '../support/cli.js';
import { FakeClock } from '../../src/shared/clock.js';
import { encodeWrapped } from '../../src/backup/catalogue.js';

const DAY = 86_400_000;

/**
 * One setting must not destroy every backup: a backup's session key stays wrapped under the KEK
 * version current when it was taken, so a retired version is kept while any live key (backup
 * keys included) is under it, and a grace period shorter than the backup retention is refused.
 */
describe('retired KEK versions and backup keys', { timeout: 180_000 }, () => {
  let t: TestAppliance;
  const clock = new FakeClock(Date.now());
  beforeAll(async () => {
    t = await createTestAppliance({ clock });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses at start a grace shorter than the backup retention plus the margin (exit 2, the rule stated)', async () => {
    for (const [grace, hours, min] of [
      ['0', '12', 15],
      ['14', '12', 15],
      ['15', '48', 16],
    ] as const) {
      const r = await runCli(['keys', 'status', '--data-dir', t.dataDir], {
        env: { COFFRE_CFG_keys__retiredKekGraceDays: grace, COFFRE_CFG_backup__graceHours: hours },
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`/keys/retiredKekGraceDays: must be at least ${min} days (got ${grace})`);
      expect(r.stderr).toContain('retiredKekGraceDays >= ceil(7 + backup.graceHours / 24) + 7');
    }
    const ok = await runCli(['keys', 'status', '--data-dir', t.dataDir, '--json'], {
      env: { COFFRE_CFG_keys__retiredKekGraceDays: '15' },
    });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('never destroys a KEK version that still wraps a live backup key: counted first, said in the result', async () => {
    const a = t.appliance;
    const sessionKey = crypto.randomBytes(32);
    const w = await a.keys.provider.wrap(sessionKey);
    expect(w.kekVersion).toBe(1);
    await a.db.db
      .insertInto('backups')
      .values({
        id: 'b-live',
        target: 'offsite',
        slot: 0,
        created_at: clock.nowMs(),
        state: 'complete',
        plain_size: 1,
        size: 1,
        parts: 1,
        members: 1,
        wrapped_key: encodeWrapped(w),
        escrow: '[]',
        verified_at: null,
        error: null,
        deleted_at: null,
        deleted_reason: null,
      })
      .execute();

    const r1 = await a.keys.rotation.rotate({ actor: 'local:test' });
    expect(r1).toMatchObject({ toVersion: 2, retired: [1], destroyed: [], kept: [] });
    clock.advance(a.config.keys.retiredKekGraceDays * DAY + DAY); // v1's grace is over
    const r2 = await a.keys.rotation.rotate({ actor: 'local:test' });
    expect(r2).toMatchObject({
      toVersion: 3,
      destroyed: [],
      kept: [{ version: 1, wrappedKeys: { dataKeys: 0, backupKeys: 1 } }],
    });
    expect(await a.keys.provider.kekVersions()).toEqual([1, 2, 3]);
    expect((await a.keys.provider.unwrap(w)).equals(sessionKey)).toBe(true); // the backup still opens
    // the CLI (another process, the real clock) says it too
    await a.db.db.updateTable('kek_versions').set({ destroy_after: 0 }).where('version', '=', 1).execute();
    const human = await runCli(['keys', 'rotate', '--data-dir', t.dataDir]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/kept: +v1, it still wraps 0 dataKeys, 1 backupKeys/);

    // the backup expires (its key is shredded from the catalogue): v1 can go
    await a.db.db
      .updateTable('backups')
      .set({ wrapped_key: null, state: 'deleted', deleted_at: clock.nowMs(), deleted_reason: 'retention' })
      .where('id', '=', 'b-live')
      .execute();
    const r3 = await a.keys.rotation.destroyDue();
    expect(r3.kept).toEqual([]);
    expect(r3.destroyed).toContain(1);
    expect(await a.keys.provider.kekVersions()).not.toContain(1);
  });
});
