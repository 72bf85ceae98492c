import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { runCli } from '../support/cli.js';
import { writeSoftHsmConf } from '../../src/keys/bootstrap.js';
import type { User } from '../vault/support.js';

/**
 * The restore drill on the secondary site, with two installations on one machine: the primary
 * appliance backs up over SFTP (real sshd); the secondary installation is another directory with
 * its own configuration (secondary.json), a replica of the primary's SoftHSM2 token (a copy of the
 * token directory, as docs/disaster-recovery.md says to keep one), and read access to the target.
 * It restores the newest backup, checks it, and writes a signed report the primary reads.
 */
let e: BackupEnv;
let op: User;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-secondary-'));
const sec = path.join(tmp, 'secondary');

const reports = () =>
  fs.existsSync(path.join(e.targetDir, 'drill-reports'))
    ? fs
        .readdirSync(path.join(e.targetDir, 'drill-reports'))
        .filter((n) => n.endsWith('.json'))
        .sort()
    : [];
const primaryDrills = async () => {
  const r = await runCli(['backup', 'drills', '--data-dir', e.env.t.dataDir, '--json'], { env: { COFFRE_URL: '' } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as {
    local: unknown;
    secondary: { ok: boolean; site: string; rtoMs: number | null; backupId: string; error: string | null } | null;
  };
};

beforeAll(async () => {
  e = await openBackupEnv();
  await e.upload('board-minutes.pdf', randomDoc(200_000));
  await e.upload('payroll.xlsx', randomDoc(50_000));
  await e.addTarget('dr');
  await e.service.run({ actor: 'job:backup' });
  op = await e.env.user('op', 'backup-operator');

  // the secondary installation: its own directory and configuration, a replica of the HSM token
  const token = e.env.t.token;
  const replica = path.join(sec, 'hsm');
  fs.mkdirSync(replica, { recursive: true, mode: 0o700 });
  fs.cpSync(token.tokenDir, path.join(replica, 'tokens'), { recursive: true });
  writeSoftHsmConf(path.join(replica, 'softhsm2.conf'), path.join(replica, 'tokens'));
  fs.copyFileSync(token.pinFile, path.join(replica, 'pin'));
  fs.writeFileSync(
    path.join(sec, 'secondary.json'),
    JSON.stringify({
      site: 'Lyon DR',
      target: { url: e.sshd.url('dr'), hostKey: e.sshd.hostKeyLine, identityFile: e.sshd.identityFile },
      keys: { ...token.section, softhsmConfFile: 'hsm/softhsm2.conf', pinFile: 'hsm/pin' },
      samples: 2,
    }),
  );
}, 240_000);
afterAll(async () => {
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('restore drill on the secondary site', { timeout: 240_000 }, () => {
  it('runs on the secondary installation from the target with the HSM replica; the primary shows it (when, RTO, outcome)', async () => {
    const before = await primaryDrills();
    expect(before.secondary).toBeNull();
    const r = await runCli(['backup', 'drill', '--secondary', '--data-dir', sec, '--json'], {
      env: { COFFRE_URL: '', COFFRE_DATA_DIR: '' },
    });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      site: string;
      backupId: string;
      rtoMs: number;
      applianceId: string;
      checks: { auditChain: boolean; auditRecords: number; samples: number };
      reportId: string;
      mac: string;
    };
    const newest = (await e.service.list())
      .filter((b) => b.state === 'complete')
      .map((b) => b.id)
      .sort()
      .at(-1);
    expect(report).toMatchObject({
      ok: true,
      site: 'Lyon DR',
      backupId: newest,
      applianceId: e.env.t.appliance.config.applianceId,
      checks: { auditChain: true, samples: 2 },
    });
    expect(report.checks.auditRecords).toBeGreaterThan(0);
    expect(report.rtoMs).toBeGreaterThan(0);
    // written back to the target, and kept in the secondary's own directory; its scratch copy is gone
    expect(reports()).toEqual([`${report.reportId}.json`]);
    expect(fs.readFileSync(path.join(sec, 'drill-reports.jsonl'), 'utf8')).toContain(report.reportId);
    expect(fs.readdirSync(path.join(sec, 'tmp'))).toEqual([]);

    // the primary's CLI (reads the target's reports, checks the MAC with its HSM) and its API
    const after = await primaryDrills();
    expect(after.secondary).toMatchObject({
      ok: true,
      site: 'Lyon DR',
      backupId: report.backupId,
      rtoMs: report.rtoMs,
      error: null,
    });
    const last = await e.env.req('GET', '/api/v1/backup/drills/last', { token: op.token });
    expect(last.status).toBe(200);
    expect(last.json().secondary).toMatchObject({ ok: true, site: 'Lyon DR', rtoMs: report.rtoMs });
    const list = await e.env.req('GET', '/api/v1/backup/drills', { token: op.token });
    expect(list.json().drills[0]).toMatchObject({ where: 'secondary', site: 'Lyon DR', ok: true, target: 'dr' });
    const human = await runCli(['backup', 'drills', '--data-dir', e.env.t.dataDir], { env: { COFFRE_URL: '' } });
    expect(human.stdout).toMatch(
      /^last drill on the secondary site: succeeded \S+ at Lyon DR, backup \S+, RTO [\d.]+ s$/m,
    );
    // recorded once, however often it is read
    await e.service.collectSecondaryDrills();
    expect(
      (
        await e.env.t.appliance.db.db
          .selectFrom('backup_checks')
          .select('id')
          .where('kind', '=', 'drill-secondary')
          .execute()
      ).length,
    ).toBe(1);
  });

  it('a report not made with the HSM partition (edited, or MACed elsewhere) is refused and alerted; a failed drill is reported signed and alerted', async () => {
    const dir = path.join(e.targetDir, 'drill-reports');
    const [real] = reports();
    const good = JSON.parse(fs.readFileSync(path.join(dir, real!), 'utf8')) as Record<string, unknown>;
    // whoever can write the target claims a faster drill
    const forgedId = '20300101T000000Z-0badc0de';
    fs.writeFileSync(
      path.join(dir, `${forgedId}.json`),
      JSON.stringify({
        ...good,
        reportId: forgedId,
        rtoMs: 1,
        endedAt: '2030-01-01T00:00:05.000Z',
        startedAt: '2030-01-01T00:00:00.000Z',
      }),
    );
    const c = await e.service.collectSecondaryDrills();
    expect(c).toEqual({ recorded: 0, refused: 1 });
    expect(await e.alerts()).toContain('backup.drill-report-forged');
    expect((await primaryDrills()).secondary?.rtoMs).toBe(good.rtoMs);
    fs.rmSync(path.join(dir, `${forgedId}.json`));

    // the newest backup is damaged at the target: the secondary's drill fails, and says so signed
    const newest = (await e.service.list())
      .filter((b) => b.state === 'complete')
      .map((b) => b.id)
      .sort()
      .at(-1)!;
    const part = path.join(e.targetDir, newest, 'part-000000.pgp');
    const bytes = fs.readFileSync(part);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    fs.writeFileSync(part, bytes);
    const r = await runCli(['backup', 'drill', '--secondary', '--data-dir', sec, '--json'], {
      env: { COFFRE_URL: '', COFFRE_DATA_DIR: '' },
    });
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, code: 'BACKUP_INTEGRITY' });
    expect(reports()).toHaveLength(2);
    const after = await primaryDrills();
    expect(after.secondary).toMatchObject({
      ok: false,
      site: 'Lyon DR',
      backupId: newest,
      rtoMs: null,
      error: expect.stringMatching(/^BACKUP_INTEGRITY: /),
    });
    expect(await e.alerts()).toContain('backup.drill-failed');
  });
});
