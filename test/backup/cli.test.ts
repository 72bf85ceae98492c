import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { CLI, runCli, startServe } from '../support/cli.js';
import { createGpg } from '../support/gpg.js';

/**
 * The `coffre backup …` and `coffre restore` verbs as real processes (the built CLI) against the
 * test appliance and a real sshd: exit codes, --json, kill -9 in mid-upload, and a restore into a
 * new data directory served over HTTPS with byte-identical documents.
 */
let e: BackupEnv;
let cliEnv: NodeJS.ProcessEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-backup-cli-'));

beforeAll(async () => {
  e = await openBackupEnv();
  await e.upload('minutes.pdf', randomDoc(1_500_000));
  await e.upload('note.txt', Buffer.from('the safe is in the basement'));
  // short leases: a process killed while holding one frees it quickly
  cliEnv = {
    COFFRE_CFG_jobs__leaseTtlMs: '2000',
    COFFRE_CFG_backup__partSizeMiB: '1',
    COFFRE_CFG_backup__retries: '1',
    COFFRE_CFG_backup__retryBaseMs: '20',
  };
});
afterAll(async () => {
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const coffre = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli([...args, '--data-dir', e.env.t.dataDir], { env: { ...cliEnv, ...env } });
const sftpArgs = () => [
  '--type',
  'sftp',
  '--url',
  e.sshd.url('dr'),
  '--host-key',
  e.sshd.hostKeyFingerprint,
  '--identity',
  e.sshd.identityFile,
];

// real processes on a busy 2-core machine: generous timeouts
describe('coffre backup target add', { timeout: 180_000 }, () => {
  it('exits 2 with one error line for an out-of-jurisdiction or too-close target; --json prints only the failure object', async () => {
    const be = await coffre([
      'backup',
      'target',
      'add',
      'bxl',
      ...sftpArgs(),
      '--jurisdiction',
      'BE',
      '--lat',
      '50.85',
      '--lon',
      '4.35',
      '--json',
    ]);
    expect(be.code).toBe(2);
    expect(JSON.parse(be.stdout)).toEqual({
      ok: false,
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(/^target bxl refused/),
      hint: expect.any(String),
      exitCode: 2,
    });
    expect(be.stderr).toMatch(/^TARGET_REFUSED: target bxl refused: target jurisdiction BE differs/m);
    const near = await coffre([
      'backup',
      'target',
      'add',
      'near',
      ...sftpArgs(),
      '--jurisdiction',
      'FR',
      '--lat',
      '48.80',
      '--lon',
      '2.12',
    ]);
    expect(near.code).toBe(2);
    expect(near.stderr).toMatch(/closer than backup.minDistanceKm/);
    const bad = await coffre([
      'backup',
      'target',
      'add',
      'x',
      '--type',
      'ftp',
      '--url',
      'ftp://x',
      '--jurisdiction',
      'FR',
      '--lat',
      '1',
      '--lon',
      '1',
    ]);
    expect(bad.code).toBe(2);
  });

  it('registers a distant target (--json: one object)', async () => {
    const r = await coffre([
      'backup',
      'target',
      'add',
      'dr',
      ...sftpArgs(),
      '--jurisdiction',
      'FR',
      '--lat',
      String(LYON.lat),
      '--lon',
      String(LYON.lon),
      '--json',
    ]);
    // stderr holds only the alert a local change raises (no second person approved it): docs/disaster-recovery.md
    const logged = r.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { alert?: { kind: string } });
    expect(logged.map((l) => l.alert?.kind)).toEqual(['backup.change-local']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'dr', jurisdiction: 'FR', hostKey: e.sshd.hostKeyFingerprint });
    expect(JSON.parse(r.stdout).distanceKm).toBeGreaterThan(300);
    const l = await coffre(['backup', 'target', 'list', '--json']);
    expect(JSON.parse(l.stdout).targets).toHaveLength(1);
  });

  it('escrow add refuses a key GnuPG 2.2 could not read (exit 2)', async () => {
    const openpgp = await import('openpgp');
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'v6@example.fr' }],
      config: { v6Keys: true },
      format: 'armored',
    });
    fs.writeFileSync(path.join(tmp, 'v6.asc'), v6.publicKey);
    const r = await coffre(['backup', 'escrow', 'add', '--public-key', path.join(tmp, 'v6.asc')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ESCROW_KEY_REFUSED: a v6 key/);
  });

  it('escrow add takes a key gpg made, once: the same key again is refused (exit 2, ESCROW_KEY_EXISTS) and not listed twice', async () => {
    const gpg = createGpg('cv25519');
    fs.writeFileSync(path.join(tmp, 'escrow.asc'), gpg.publicKey);
    const ok = await coffre(['backup', 'escrow', 'add', '--public-key', path.join(tmp, 'escrow.asc'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ fingerprint: gpg.fingerprint });
    const again = await coffre(['backup', 'escrow', 'add', '--public-key', path.join(tmp, 'escrow.asc')]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^ESCROW_KEY_EXISTS: escrow key .* is already registered; nothing was changed/);
    const l = await coffre(['backup', 'escrow', 'list', '--json']);
    expect(JSON.stringify(JSON.parse(l.stdout)).split(gpg.fingerprint).length - 1).toBe(1);
  });
});

describe('coffre backup run, list, verify', { timeout: 240_000 }, () => {
  it('takes a verified backup; list and verify report it', async () => {
    const r = await coffre(['backup', 'run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; targets: { backupId: string; ok: boolean }[] };
    expect(report.ok).toBe(true);
    const id = report.targets[0]!.backupId;
    expect(atTarget(e.targetDir).complete).toEqual([id]);
    const l = JSON.parse((await coffre(['backup', 'list', '--json'])).stdout) as {
      backups: { id: string; state: string; slotName: string }[];
    };
    expect(l.backups).toEqual([expect.objectContaining({ id, state: 'complete' })]);
    const v = await coffre(['backup', 'verify', 'latest', '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ id, ok: true });
    const n = await coffre(['backup', 'verify', '20200101T000000Z-abcdef']);
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(/^BACKUP_NOT_FOUND/);
  });

  it('kill -9 in mid-upload leaves nothing complete-looking at the target; the next run cleans up and works', async () => {
    const before = atTarget(e.targetDir).complete;
    await e.upload('scan.tiff', randomDoc(2_000_000));
    const child = spawn(process.execPath, [CLI, 'backup', 'run', '--data-dir', e.env.t.dataDir], {
      env: { ...process.env, ...cliEnv, COFFRE_CFG_backup__bandwidthLimitKiBps: '256' },
      stdio: 'ignore',
    });
    const deadline = Date.now() + 60_000;
    let tmpDir: string | undefined;
    for (;;) {
      // as soon as part files are being written: the limit paces the backup engine too, so the
      // ~3.5 MB of blobs take ~14 s at 256 KiB/s (before the engine was paced, the whole upload
      // took well under a second and this caught it by luck)
      tmpDir = fs.readdirSync(e.targetDir).find((n) => n.startsWith('.tmp-'));
      if (tmpDir && fs.readdirSync(path.join(e.targetDir, tmpDir)).some((f) => f.includes('part-'))) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('the upload never got under way');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const at = atTarget(e.targetDir);
    expect(at.complete).toEqual(before);
    expect(at.other).toEqual([tmpDir]);
    // no sidecar (no key), no final name: nothing that a restore or a listing would take for a backup
    expect(fs.readdirSync(path.join(e.targetDir, tmpDir!)).some((f) => f === 'sidecar.json')).toBe(false);
    const l = JSON.parse((await coffre(['backup', 'list', '--json'])).stdout) as {
      backups: { id: string; state: string }[];
    };
    expect(l.backups.filter((b) => b.state === 'complete').map((b) => b.id)).toEqual(before);
    // the killed run's leases (2 s, real time) expire: wait for that, as the table says
    for (;;) {
      const held = await e.env.t.appliance.db.db
        .selectFrom('job_leases')
        .select((eb) => eb.fn.max('expires_at').as('until'))
        .executeTakeFirst();
      if (held?.until == null || Date.now() > Number(held.until)) break;
      await new Promise((r) => setTimeout(r, Math.max(20, Number(held.until) - Date.now() + 5)));
    }
    const again = await coffre(['backup', 'run', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const after = atTarget(e.targetDir);
    expect(after.other).toEqual([]);
    // the same weekday slot: the new verified backup replaced the earlier one
    expect(after.complete).toEqual([JSON.parse(again.stdout).targets[0].backupId]);
    const rows = await e.env.t.appliance.db.db
      .selectFrom('backups')
      .select(['state', 'error', 'wrapped_key'])
      .where('state', '=', 'failed')
      .execute();
    expect(rows).toEqual([{ state: 'failed', error: 'ABANDONED', wrapped_key: null }]);
  });

  it('the restore drill restores the newest backup, decrypts samples, records the RTO', async () => {
    const r = await coffre(['backup', 'drill', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as { documents: number; blobs: number; samples: number; rtoMs: number };
    expect(d).toMatchObject({ documents: 3, blobs: 3, samples: 3 });
    expect(d.rtoMs).toBeGreaterThan(0);
  });
});

describe('coffre restore', { timeout: 240_000 }, () => {
  it('builds a new installation; started, it serves byte-identical documents', async () => {
    const keysFile = path.join(tmp, 'keys.json');
    fs.writeFileSync(keysFile, JSON.stringify(e.env.t.token.section));
    const newDir = path.join(tmp, 'secondary');
    const args = [
      'restore',
      '--from',
      e.sshd.url('dr'),
      '--backup',
      'latest',
      '--data-dir',
      newDir,
      '--host-key',
      e.sshd.hostKeyLine,
      '--identity',
      e.sshd.identityFile,
      '--keys',
      keysFile,
    ];
    const r = await runCli([...args, '--json'], { env: cliEnv });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      documents: number;
      blobs: number;
      nextSteps: string[];
      applianceId: string;
    };
    expect(report).toMatchObject({ documents: 3, blobs: 3, applianceId: e.env.t.appliance.config.applianceId });
    expect(report.nextSteps.join('\n')).toMatch(/DNS/);
    // a second restore into the same directory is refused, nothing changed
    const again = await runCli(args, { env: cliEnv });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^DATA_DIR_NOT_EMPTY/);

    const served = await startServe(newDir, 0, cliEnv);
    try {
      const ca = fs.readFileSync(path.join(newDir, 'tls', 'cert.pem'));
      const port = new URL(served.url).port;
      for (const [id, bytes] of e.docs) {
        const body = await new Promise<Buffer>((resolve, reject) => {
          https
            .get(
              {
                host: '127.0.0.1',
                port,
                path: `/api/v1/documents/${id}/content`,
                ca,
                servername: 'localhost',
                headers: { authorization: `Bearer ${e.alice.token}` },
              },
              (res) => {
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () =>
                  res.statusCode === 200
                    ? resolve(Buffer.concat(chunks))
                    : reject(new Error(`${res.statusCode}: ${Buffer.concat(chunks).toString()}`)),
                );
              },
            )
            .on('error', reject);
        });
        expect(body.equals(bytes)).toBe(true);
      }
    } finally {
      served.child.kill('SIGTERM');
      await new Promise((r) => served.child.once('exit', r));
    }
    // the restored trail verifies against the audit checkpoints the backup carried
    const cps = path.join(newDir, 'restore', 'audit-checkpoints.json');
    expect(JSON.parse(fs.readFileSync(cps, 'utf8')).length).toBeGreaterThan(0);
    const v = await runCli(['audit', 'verify', '--data-dir', newDir, '--checkpoint', cps, '--json'], { env: cliEnv });
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
  });

  it('refuses a restore without the HSM (exit 2) and leaves no directory behind', async () => {
    const newDir = path.join(tmp, 'nohsm');
    const r = await runCli(
      [
        'restore',
        '--from',
        e.sshd.url('dr'),
        '--backup',
        'latest',
        '--data-dir',
        newDir,
        '--host-key',
        e.sshd.hostKeyLine,
        '--identity',
        e.sshd.identityFile,
      ],
      { env: cliEnv },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/restore needs the HSM/);
    expect(fs.existsSync(newDir)).toBe(false);
  });
});
