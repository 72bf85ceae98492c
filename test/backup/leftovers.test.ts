import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, openBackupEnv, randomDoc, type BackupEnv } from './support.js';

/**
 * What a killed backup run leaves behind, as the next run and `target remove` find it: a complete
 * backup whose catalogue row says `uploading` (a kill in the rename window), a backup the catalogue
 * holds as failed, scratch copies (database snapshots, decrypted verify copies). Real sshd, real
 * HSM, runs at full speed (faults.test.ts interrupts slowed-down uploads); only the clock is fake.
 */
let e: BackupEnv;
beforeAll(async () => {
  e = await openBackupEnv({ COFFRE_CFG_backup__retries: '0' });
  await e.upload('ledger.xlsx', randomDoc(1_500_000));
  await e.upload('minutes.pdf', randomDoc(1_500_000));
  await e.addTarget('dr');
});
afterAll(async () => {
  await e?.close();
});

const db = () => e.env.t.appliance.db.db;
const run = () => e.service.run({ actor: 'job:backup' });
const nextDay = () => e.env.clock.advance(24 * 3_600_000);

describe('what a killed backup run leaves behind', { timeout: 240_000 }, () => {
  it('a run killed in the rename window: the complete backup it left is adopted and managed by the next run', async () => {
    nextDay();
    const done = await run();
    const id = done.targets[0]!.backupId!;
    // what a SIGKILL between the rename and the catalogue update leaves: the backup complete at the target, its row `uploading`
    await db()
      .updateTable('backups')
      .set({ state: 'uploading', plain_size: null, size: null, parts: null, members: null, verified_at: null })
      .where('id', '=', id)
      .execute();
    nextDay();
    expect((await run()).ok).toBe(true);
    const row = await db().selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ state: 'complete', error: null });
    expect(row.wrapped_key).not.toBeNull();
    expect(atTarget(e.targetDir).complete).toContain(id);
    expect((await e.service.list()).map((b) => b.id)).toContain(id);
  });

  it('a backup the catalogue holds as failed but whose directory is at the target (the old outcome of that kill) is destroyed at the next run', async () => {
    nextDay();
    const id = (await run()).targets[0]!.backupId!;
    await db()
      .updateTable('backups')
      .set({ state: 'failed', wrapped_key: null, error: 'ABANDONED', deleted_reason: 'abandoned' })
      .where('id', '=', id)
      .execute();
    expect(atTarget(e.targetDir).complete).toContain(id);
    nextDay();
    expect((await run()).ok).toBe(true);
    expect(atTarget(e.targetDir).complete).not.toContain(id);
    const audit = await db()
      .selectFrom('audit_events')
      .select(['action', 'reason'])
      .where('action', '=', 'backup.delete')
      .where('reason', '=', 'UNMANAGED')
      .execute();
    expect(audit.length).toBeGreaterThan(0);
  });

  it('scratch copies a killed run left (database snapshots, decrypted verify copies) are swept at the next run; a run leaves none', async () => {
    const scratch = e.env.t.appliance.config.backup.scratchDir;
    fs.mkdirSync(scratch, { recursive: true });
    const left = ['snapshot-0badc0de.db', 'verify-deadbeef.db', 'verify-deadbeef.db-wal'];
    for (const f of left) fs.writeFileSync(path.join(scratch, f), 'left by a killed run');
    fs.mkdirSync(path.join(scratch, 'drill-00c0ffee'));
    nextDay();
    expect((await run()).ok).toBe(true);
    expect(fs.readdirSync(scratch)).toEqual([]);
    const id = (await e.service.find('latest')).id;
    await e.service.verify(id, { actor: 'local:test' });
    expect(fs.readdirSync(scratch)).toEqual([]);
  });

  it('target remove destroys everything of this appliance at the target, what the catalogue lost track of included', async () => {
    nextDay();
    const id = (await run()).targets[0]!.backupId!;
    await db().updateTable('backups').set({ state: 'failed', wrapped_key: null }).where('id', '=', id).execute();
    // and a backup-named directory whose sidecar cannot be read (not adoptable)
    const junk = '20260101T000000Z-abcdef';
    fs.mkdirSync(path.join(e.targetDir, junk));
    fs.writeFileSync(path.join(e.targetDir, junk, 'sidecar.json'), '{ not json');
    const r = await e.service.removeTarget('dr', 'local:test');
    expect(r.deleted).toEqual(expect.arrayContaining([id, junk]));
    expect(fs.readdirSync(e.targetDir)).toEqual([]);
  });
});
