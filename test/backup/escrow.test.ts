import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { createGpg, type Gpg } from '../support/gpg.js';
import { PathTarget } from '../../src/backup/targets/path.js';
import { readSidecar } from '../../src/backup/reader.js';

/**
 * Escrow keys are listed, given an expiry and removed, each audited; a backup taken after a
 * key's expiry or removal is not encrypted to it (its sidecar and its parts say so: gpg with that
 * key opens nothing of it). Real gpg keys, a mounted path target, the fake clock.
 */
let e: BackupEnv;
let g1: Gpg;
let g2: Gpg;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-escrow-'));
beforeAll(async () => {
  e = await openBackupEnv();
  // ahead of real time (the gpg keys made now are valid) and at 09:00 UTC, the appliance's time
  // zone: the three backups below, three hours apart, share one weekday slot whenever the test runs
  const start = new Date(Date.now() + 2 * 86_400_000);
  start.setUTCHours(9, 0, 0, 0);
  e.env.clock.set(start.getTime());
  g1 = createGpg('cv25519');
  g2 = createGpg('cv25519');
  await e.upload('ledger.ods', randomDoc(100_000));
  fs.mkdirSync(path.join(tmp, 'dr'));
  await e.service.addTarget({ name: 'dr', type: 'path', url: `file://${path.join(tmp, 'dr')}`, ...LYON }, 'local:test');
});
afterAll(async () => {
  g1?.close();
  g2?.close();
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const escrowOf = async (id: string) => (await readSidecar(new PathTarget(path.join(tmp, 'dr')), id, id)).sidecar.escrow;
const backup = async () => (await e.service.run({ actor: 'job:backup' })).targets[0]!.backupId!;
const audited = async (action: string) =>
  (
    await e.env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['outcome', 'reason', 'targets'])
      .where('action', '=', action)
      .orderBy('seq')
      .execute()
  ).map((r) => ({ outcome: r.outcome, reason: r.reason, targets: r.targets }));

describe('escrow keys: expiry and removal', { timeout: 180_000 }, () => {
  it('a key past the expiry set for it, or removed, is no longer used; both audited; an expiry is only brought forward', async () => {
    await e.service.addEscrow(g1.publicKey, 'local:test');
    await e.service.addEscrow(g2.publicKey, 'local:test');
    const first = await backup();
    expect((await escrowOf(first)).sort()).toEqual([g1.fingerprint, g2.fingerprint].sort());
    const part = (id: string) => path.join(tmp, 'dr', id, 'part-000000.pgp');
    const copyOfFirst = path.join(tmp, 'first-part.pgp');
    fs.copyFileSync(part(first), copyOfFirst);

    const now = e.env.clock.nowMs();
    const r = await e.service.expireEscrow(g1.fingerprint, now + 3600_000, 'local:test');
    expect(r).toEqual({ fingerprint: g1.fingerprint, expiresAt: now + 3600_000 });
    await expect(e.service.expireEscrow(g1.fingerprint, now + 7200_000, 'local:test')).rejects.toMatchObject({
      code: 'USAGE',
      exitCode: 2,
    });
    expect((await e.service.listEscrow()).find((k) => k.fingerprint === g1.fingerprint)!.expiresAt).toBe(
      now + 3600_000,
    );
    e.env.clock.advance(2 * 3600_000);
    const second = await backup();
    expect(await escrowOf(second)).toEqual([g2.fingerprint]);

    await e.service.removeEscrow(g2.fingerprint, 'local:test');
    expect((await e.service.listEscrow()).map((k) => k.fingerprint)).toEqual([g1.fingerprint]);
    await expect(e.service.removeEscrow(g2.fingerprint, 'local:test')).rejects.toMatchObject({
      code: 'ESCROW_KEY_NOT_FOUND',
    });
    e.env.clock.advance(3600_000);
    const third = await backup();
    expect(await escrowOf(third)).toEqual([]);
    // the first backup was destroyed by Coffre (replaced in its slot), yet the removed key's holder
    // still opens a copy of it, as the console and the runbook say; the later backup, not
    expect(await e.service.find(first).catch((x: { code: string }) => x.code)).toBe('BACKUP_NOT_FOUND');
    expect(g2.run(['--decrypt', copyOfFirst]).length).toBeGreaterThan(0);
    expect(() => g2.run(['--decrypt', part(third)])).toThrow();

    expect(await audited('backup.escrow.expire')).toEqual([
      { outcome: 'success', reason: null, targets: expect.stringContaining(g1.fingerprint) },
      { outcome: 'denied', reason: 'EXPIRY_LATER', targets: expect.stringContaining(g1.fingerprint) },
    ]);
    expect(await audited('backup.escrow.remove')).toEqual([
      { outcome: 'success', reason: null, targets: expect.stringContaining(g2.fingerprint) },
    ]);
  });
});
