import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, filesUnder, LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { createGpg, type Gpg } from '../support/gpg.js';
import { PathTarget } from '../../src/backup/targets/path.js';
import { openSidecar, readArchive, readSidecar, sinkTo } from '../../src/backup/reader.js';
import { DAY_MS } from '../../src/backup/retention.js';
import { sessionKeyInput, sessionKeyName } from '../../src/backup/format.js';
import { parseExportedCheckpoint } from '../../src/audit/index.js';

/** the first Monday 02:30 UTC after now (the fake clock runs ahead of real time: keys made now are valid) */
const MONDAY_0230 = (() => {
  const d = new Date();
  d.setUTCHours(2, 30, 0, 0);
  d.setUTCDate(d.getUTCDate() + ((8 - d.getUTCDay()) % 7 || 7));
  return d.getTime();
})();
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let e: BackupEnv;
let gpg: Gpg;
beforeAll(async () => {
  // the fake clock jumps hours between records, faster than the checkpointer's real-time tick: a
  // 30-day cadence keeps verify's cadence check (test/audit/checkpoints.test.ts) out of this test
  e = await openBackupEnv({ COFFRE_CFG_audit__checkpointIntervalMs: String(30 * 86_400_000) });
  e.env.clock.set(MONDAY_0230 - 3600_000);
  gpg = createGpg('cv25519');
  await e.upload('board-minutes.pdf', randomDoc(1_300_000)); // the archive spans several 1 MiB parts
  await e.upload('contract.docx', randomDoc(40_000));
  await e.upload('empty.txt', Buffer.alloc(0));
});
afterAll(async () => {
  gpg?.close();
  await e?.close();
});

const run = () => e.service.run({ actor: 'job:backup' });
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'no error',
    (x: { code?: string }) => x.code,
  );

describe('backup target registration', () => {
  it('refuses an out-of-jurisdiction target and a too-close target, storing nothing', async () => {
    const base = {
      type: 'sftp' as const,
      url: e.sshd.url('x'),
      hostKey: e.sshd.hostKeyLine,
      identityFile: e.sshd.identityFile,
    };
    await expect(
      e.service.addTarget({ name: 'brussels', ...base, jurisdiction: 'BE', lat: 50.8503, lon: 4.3517 }, 'local:test'),
    ).rejects.toMatchObject({ code: 'TARGET_REFUSED', exitCode: 2 });
    await expect(
      e.service.addTarget({ name: 'versailles', ...base, jurisdiction: 'FR', lat: 48.8049, lon: 2.1204 }, 'local:test'),
    ).rejects.toThrow(/closer than backup.minDistanceKm \(100 km\)/);
    expect(await e.service.listTargets()).toEqual([]);
    expect(fs.existsSync(path.join(e.sshd.root, 'x'))).toBe(false);
  });

  it('refuses an SFTP target without a pinned host key, and shows the key the server presents', async () => {
    const err = await e.service
      .addTarget(
        { name: 'dr', type: 'sftp', url: e.sshd.url('dr'), ...LYON, identityFile: e.sshd.identityFile },
        'local:test',
      )
      .catch((x: Error & { code: string; hint: string }) => x);
    expect((err as { code: string }).code).toBe('USAGE');
    expect((err as { hint: string }).hint).toContain(e.sshd.hostKeyFingerprint);
  });

  it('registers a distant target after reaching it, and writes its marker', async () => {
    await e.addTarget();
    expect((await e.service.listTargets()).map((t) => t.name)).toEqual(['dr']);
    expect(JSON.parse(fs.readFileSync(path.join(e.targetDir, '.coffre-target'), 'utf8')).applianceId).toBe(
      e.env.t.appliance.config.applianceId,
    );
  });
});

describe('a full cycle', { timeout: 120_000 }, () => {
  let first: string;
  /** the audit trail's head just before the first backup, past its latest checkpoint */
  let headBefore: { seq: number; hash: string };
  it('backs up, verifies by reading everything back, and only then renames into place', async () => {
    e.env.clock.set(MONDAY_0230);
    // the trail's head is past its latest checkpoint (the fake clock stands still: no periodic one comes)
    const trail = e.env.t.appliance.audit;
    await trail.exportCheckpoints();
    await trail.recordNow({ action: 'test.marker', actor: 'local:test', outcome: 'success' });
    const db = e.env.t.appliance.db.db;
    headBefore = await db
      .selectFrom('audit_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
      .then((h) => ({ seq: Number(h.seq), hash: h.hash }));
    const latest = await db
      .selectFrom('audit_checkpoints')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirstOrThrow();
    expect(Number(latest.seq)).toBeLessThan(headBefore.seq);
    const r = await run();
    expect(r.ok).toBe(true);
    const t = r.targets[0]!;
    first = t.backupId!;
    expect(t.parts).toBe(Math.ceil(t.plainSize! / (1024 * 1024)));
    expect(t.parts).toBeGreaterThanOrEqual(2);
    expect(t.members).toBe(3 + 3); // db, config, audit checkpoints + 3 blobs
    const at = atTarget(e.targetDir);
    expect(at).toEqual({ complete: [first], other: [] });
    expect(fs.readdirSync(path.join(e.targetDir, first)).sort()).toEqual([
      ...Array.from({ length: t.parts! }, (_, i) => `part-${String(i).padStart(6, '0')}.pgp`),
      'sidecar.json',
    ]);
    const [b] = await e.service.list();
    expect(b).toMatchObject({ id: first, state: 'complete', slot: 1, slotName: 'Mon', parts: t.parts });
    expect(b!.verifiedAt).toBe(MONDAY_0230);
    // nothing in the parts or the sidecar is readable without the keys
    for (const f of filesUnder(path.join(e.targetDir, first))) {
      const bytes = fs.readFileSync(f);
      expect(bytes.includes(Buffer.from('SQLite format 3'))).toBe(false);
      expect(bytes.includes(Buffer.from('board-minutes'))).toBe(false);
    }
    const audit = await e.env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['action', 'outcome'])
      .where('action', 'like', 'backup.%')
      .execute();
    expect(audit).toContainEqual({ action: 'backup.run', outcome: 'success' });
    expect(audit).toContainEqual({ action: 'backup.target.add', outcome: 'success' });
  });

  it('verify reads it back again and records the check', async () => {
    const v = await e.service.verify('latest', { actor: 'local:test' });
    expect(v).toMatchObject({ id: first, ok: true, members: 6 });
    const checks = await e.env.t.appliance.db.db
      .selectFrom('backup_checks')
      .select(['kind', 'ok'])
      .where('backup_id', '=', first)
      .execute();
    expect(checks).toEqual([
      { kind: 'upload', ok: 1 },
      { kind: 'verify', ok: 1 },
    ]);
  });

  it("the archive inside holds the database without any backup's key, the config, the audit checkpoints and the blobs", async () => {
    const t = new PathTarget(e.targetDir);
    const { sidecar } = await readSidecar(t, first, first);
    const key = await openSidecar(e.env.t.appliance.keys.provider, sidecar, { backupId: first }, first);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inside-'));
    const manifest = await readArchive({
      target: t,
      dir: first,
      sidecar,
      key,
      label: first,
      onMember: sinkTo({
        'db/coffre.db': path.join(dir, 'db'),
        'config/config.json': path.join(dir, 'config'),
        'audit/checkpoints.json': path.join(dir, 'cps'),
      }),
    });
    expect(manifest.counts).toEqual({ documents: 3, versions: 3, blobs: 3 });
    expect(manifest.site).toMatchObject({ jurisdiction: 'FR' });
    const db = fs.readFileSync(path.join(dir, 'db'));
    const row = await e.env.t.appliance.db.db
      .selectFrom('backups')
      .select('wrapped_key')
      .where('id', '=', first)
      .executeTakeFirstOrThrow();
    const nonce = JSON.parse(row.wrapped_key!).nonce as string;
    expect(db.includes(Buffer.from(nonce))).toBe(false);
    expect(db.includes(Buffer.from(nonce, 'hex'))).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config'), 'utf8')).applianceId).toBe(
      e.env.t.appliance.config.applianceId,
    );
    // the backup carries a checkpoint MACed for it, covering the trail as it was when it was taken
    const cps = (JSON.parse(fs.readFileSync(path.join(dir, 'cps'), 'utf8')) as unknown[]).map(parseExportedCheckpoint);
    expect(cps[0]).toMatchObject({ kind: 'manual', seq: headBefore.seq, hash: headBefore.hash });
    const v = await e.env.t.appliance.audit.verify(cps.map((c) => c!));
    expect(v).toMatchObject({ ok: true, anchors: { total: cps.length + 1, matched: cps.length + 1 } }); // + the anchor file
    fs.rmSync(dir, { recursive: true });
  });
});

describe('escrow interop with stock GnuPG', { timeout: 120_000 }, () => {
  it('refuses an escrow key gpg 2.2 could not read, accepts a gpg-made key', async () => {
    const openpgp = await import('openpgp');
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'v6@example.fr' }],
      config: { v6Keys: true },
      format: 'armored',
    });
    await expect(e.service.addEscrow(v6.publicKey, 'local:test')).rejects.toMatchObject({
      code: 'ESCROW_KEY_REFUSED',
      exitCode: 2,
    });
    const k = await e.service.addEscrow(gpg.publicKey, 'local:test');
    expect(k.fingerprint).toBe(gpg.fingerprint);
  });

  it('gpg with the escrow key decrypts every part of a backup; GNU tar unpacks it; members match the manifest', async () => {
    e.env.clock.advance(60_000);
    const r = await run();
    const id = r.targets[0]!.backupId!;
    const dir = path.join(e.targetDir, id);
    const parts = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.pgp'))
      .sort();
    const tarBytes = Buffer.concat(parts.map((p) => gpg.run(['--decrypt', path.join(dir, p)])));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'untar-'));
    execFileSync('tar', ['-x', '-C', out], { input: tarBytes });
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      backupId: string;
      members: { name: string; size: number; sha256: string }[];
    };
    expect(manifest.backupId).toBe(id);
    expect(manifest.members.length).toBe(6);
    for (const m of manifest.members) {
      const b = fs.readFileSync(path.join(out, m.name));
      expect(b.length).toBe(m.size);
      expect(sha(b)).toBe(m.sha256);
    }
    // the document blobs stay encrypted under the KEK: the escrow key alone never reveals a document
    for (const [, bytes] of e.docs)
      if (bytes.length > 32)
        for (const f of filesUnder(path.join(out, 'blobs')))
          expect(fs.readFileSync(f).includes(bytes.subarray(0, 32))).toBe(false);
    fs.rmSync(out, { recursive: true });
  });
});

describe('tampering and failures', { timeout: 120_000 }, () => {
  it('one byte changed at the target: verify fails, alerts, records the failed check', async () => {
    const [latest] = await e.service.list();
    const part = path.join(e.targetDir, latest!.id, 'part-000001.pgp');
    const orig = fs.readFileSync(part);
    const bad = Buffer.from(orig);
    bad[1000]! ^= 0x20;
    fs.writeFileSync(part, bad);
    await expect(e.service.verify(latest!.id, { actor: 'local:test' })).rejects.toMatchObject({
      code: 'BACKUP_INTEGRITY',
    });
    expect(await e.alerts()).toContain('backup.verify-failed');
    const check = await e.env.t.appliance.db.db
      .selectFrom('backup_checks')
      .selectAll()
      .where('backup_id', '=', latest!.id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(check.ok).toBe(0);
    expect(check.error).toMatch(/BACKUP_INTEGRITY: .*part-000001.pgp does not match its recorded SHA-256/);
    // an edited sidecar fails its HSM MAC
    fs.writeFileSync(part, orig);
    const sc = path.join(e.targetDir, latest!.id, 'sidecar.json');
    const sidecar = fs.readFileSync(sc, 'utf8');
    fs.writeFileSync(sc, sidecar.replace(/"slot": \d/, '"slot": 3'));
    await expect(e.service.verify(latest!.id, { actor: 'local:test' })).rejects.toThrow(/HSM MAC does not verify/);
    fs.writeFileSync(sc, sidecar);
    expect((await e.service.verify(latest!.id, { actor: 'local:test' })).ok).toBe(true);
  });

  it('target down for one run: alert, older backups untouched; the next run is fine', async () => {
    const before = filesUnder(e.targetDir).map((f) => [f, sha(fs.readFileSync(f))]);
    await e.sshd.stop();
    e.env.clock.advance(60_000);
    await expect(run()).rejects.toMatchObject({ code: 'TARGET_UNREACHABLE' });
    expect(await e.alerts()).toContain('backup.failed');
    await e.sshd.start();
    expect(filesUnder(e.targetDir).map((f) => [f, sha(fs.readFileSync(f))])).toEqual(before);
    const failed = (await e.service.list({ includeDeleted: true })).filter((b) => b.state === 'failed');
    expect(failed.every((b) => !b.hasKey)).toBe(true);
    e.env.clock.advance(60_000);
    expect((await run()).ok).toBe(true);
  });
});

// many full runs on a busy 2-core machine: a generous timeout
describe('retention by weekday slot', { timeout: 300_000 }, () => {
  it('eight daily runs leave exactly seven slots; each replacement only after the new backup verified; the expired key exists nowhere', async () => {
    // start from a clean target: destroy what earlier tests made
    for (const b of await e.service.list()) {
      const t = new PathTarget(e.targetDir);
      await e.service.destroy(t, 'dr', b.id, 'test-reset', 'local:test');
    }
    expect(atTarget(e.targetDir).complete).toEqual([]);
    const days: { id: string; slot: number; wrapped: string }[] = [];
    for (let d = 0; d < 8; d++) {
      e.env.clock.set(MONDAY_0230 + 7 * DAY_MS + d * DAY_MS);
      if (d === 7) {
        // day 8's first attempt fails (target down): last Monday's backup must survive it
        await e.sshd.stop();
        await expect(run()).rejects.toThrow();
        await e.sshd.start();
        expect(atTarget(e.targetDir).complete).toContain(days[0]!.id);
        e.env.clock.advance(3600_000);
      }
      const r = await run();
      const id = r.targets[0]!.backupId!;
      const row = await e.env.t.appliance.db.db
        .selectFrom('backups')
        .select(['slot', 'wrapped_key'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      days.push({ id, slot: row.slot, wrapped: JSON.parse(row.wrapped_key!).nonce });
      expect(r.targets[0]!.deleted).toEqual(d === 7 ? [{ id: days[0]!.id, reason: 'replaced' }] : []);
    }
    const at = atTarget(e.targetDir);
    expect(at.complete).toEqual(days.slice(1).map((d) => d.id));
    expect(at.other).toEqual([]);
    expect(new Set(days.slice(1).map((d) => d.slot)).size).toBe(7);
    // the replacement came after the new backup's verification, in the audit trail's order
    const events = await e.env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['seq', 'action', 'targets', 'reason'])
      .where('action', 'in', ['backup.run', 'backup.delete'])
      .orderBy('seq')
      .execute();
    const runSeq = events.find((x) => x.action === 'backup.run' && x.targets?.includes(days[7]!.id))!.seq;
    const delSeq = events.find((x) => x.action === 'backup.delete' && x.targets?.includes(days[0]!.id))!.seq;
    expect(delSeq).toBeGreaterThan(runSeq);
    // the weekly verification reads all seven slots back in full
    expect(await e.service.verifyAll({ actor: 'job:backup.verify' })).toEqual({ ok: 7, failed: [] });
    const weekly = await e.env.t.appliance.db.db
      .selectFrom('backup_checks')
      .select('backup_id')
      .where('kind', '=', 'weekly')
      .where('ok', '=', 1)
      .execute();
    expect(weekly.map((w) => w.backup_id).sort()).toEqual(
      days
        .slice(1)
        .map((d) => d.id)
        .sort(),
    );
    const old = await e.env.t.appliance.db.db
      .selectFrom('backups')
      .selectAll()
      .where('id', '=', days[0]!.id)
      .executeTakeFirstOrThrow();
    expect(old).toMatchObject({ state: 'deleted', wrapped_key: null, deleted_reason: 'replaced' });
    // the expired backup's HSM key object is destroyed, and its key reference exists nowhere:
    // catalogue, database file and WAL, target, scratch, other backups
    await expect(
      e.env.t.appliance.keys.provider.mac(sessionKeyName(days[0]!.id), sessionKeyInput(days[0]!.id, days[0]!.wrapped), {
        create: false,
      }),
    ).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    const needles = [Buffer.from(days[0]!.wrapped), Buffer.from(days[0]!.wrapped, 'hex')];
    const dataDir = e.env.t.dataDir;
    const haystacks = [...filesUnder(dataDir), ...filesUnder(e.sshd.root)];
    for (const f of haystacks) for (const n of needles) expect(fs.readFileSync(f).includes(n), f).toBe(false);
    const t = new PathTarget(e.targetDir);
    for (const d of days.slice(1)) {
      const { sidecar } = await readSidecar(t, d.id, d.id);
      const key = await openSidecar(e.env.t.appliance.keys.provider, sidecar, { backupId: d.id }, d.id);
      const tmp = path.join(os.tmpdir(), `db-${d.id}`);
      await readArchive({ target: t, dir: d.id, sidecar, key, label: d.id, onMember: sinkTo({ 'db/coffre.db': tmp }) });
      const db = fs.readFileSync(tmp);
      for (const n of needles) expect(db.includes(n)).toBe(false);
      fs.rmSync(tmp);
    }
  });

  it('a backup past seven days plus the grace is destroyed even when no newer run succeeded, with an alert', async () => {
    const held = atTarget(e.targetDir).complete;
    const oldest = held[0]!;
    await e.sshd.stop();
    // the next Tuesday's run fails and the clock passes the oldest backup's promised life
    e.env.clock.advance(7 * DAY_MS + 13 * 3600_000);
    await expect(run()).rejects.toThrow();
    await e.sshd.start();
    // its key was destroyed locally at once; the watchdog deletes it at the target
    const w = await e.service.watchdog({ actor: 'job:backup.watchdog' });
    expect(w.destroyed).toContain(oldest);
    expect(atTarget(e.targetDir).complete).not.toContain(oldest);
    expect(await e.alerts()).toContain('backup.expired-unreplaced');
    expect(w.overdue).toBe(true);
    expect(await e.alerts()).toContain('backup.overdue');
  });
});
