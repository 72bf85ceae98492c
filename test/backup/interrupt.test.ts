import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import https from 'node:https';
import { CLI, runCli, startServe } from '../support/cli.js';
import type { User } from '../vault/support.js';

/**
 * `coffre backup run`, `backup verify` and `keys rotate` as real processes, stopped by SIGTERM,
 * SIGINT or SIGKILL: a clean stop exits 143/130 with its lease released and its scratch copies
 * removed; a killed one blocks nothing (its leases are taken over at once, with the default
 * 2-minute lease) and what it left is swept by the next run.
 */
let e: BackupEnv;
let scratch: string;
let operator: User;
/** the operator signs in with a password only (the second factor is tested elsewhere) */
const NO_MFA = { COFFRE_CFG_auth__mfa__requiredRoles: '["admin"]' };
// slow enough to be interrupted mid-transfer; the default lease TTL (2 min): nothing here waits for it
const cliEnv = {
  COFFRE_CFG_backup__partSizeMiB: '1',
  COFFRE_CFG_backup__retries: '1',
  COFFRE_CFG_backup__retryBaseMs: '20',
  COFFRE_CFG_backup__bandwidthLimitKiBps: '384',
};
/** the runs that nobody interrupts go at full speed */
const fullSpeed = { ...cliEnv, COFFRE_CFG_backup__bandwidthLimitKiBps: '0' };

beforeAll(async () => {
  e = await openBackupEnv(NO_MFA);
  operator = await e.env.user('op', 'backup-operator');
  await e.upload('scan.tiff', randomDoc(2_500_000));
  await e.addTarget('dr');
  expect((await e.service.run({ actor: 'job:backup' })).ok).toBe(true);
  scratch = e.env.t.appliance.config.backup.scratchDir;
});
afterAll(async () => {
  await e?.close();
});

const db = () => e.env.t.appliance.db.db;
const coffre = (args: string[]) => runCli([...args, '--data-dir', e.env.t.dataDir], { env: fullSpeed });
const scratchCopies = () => (fs.existsSync(scratch) ? fs.readdirSync(scratch) : []);

/** starts a CLI verb; resolves its exit code, signal and stderr when it ends */
function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args, '--data-dir', e.env.t.dataDir], {
    env: { ...process.env, ...cliEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; at: number }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, stderr, at: performance.now() })),
  );
  return { child, ended };
}

async function until(what: string, cond: () => boolean, child: { exitCode: number | null }): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what} never happened`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const uploadingParts = () => {
  const tmp = fs.readdirSync(e.targetDir).find((n) => n.startsWith('.tmp-'));
  return !!tmp && fs.readdirSync(path.join(e.targetDir, tmp)).some((f) => f.includes('part-'));
};

describe('the CLI stopped by a signal', { timeout: 240_000 }, () => {
  it('SIGTERM mid-upload: exit 143 within seconds, the run recorded as failed, lease released, no scratch copy; the next run works at once', async () => {
    const { child, ended } = start(['backup', 'run']);
    await until('the upload', uploadingParts, child);
    expect(scratchCopies().some((n) => n.startsWith('snapshot-'))).toBe(true);
    const t0 = performance.now();
    child.kill('SIGTERM');
    const r = await ended;
    expect(r.code, r.stderr).toBe(143);
    expect(r.at - t0).toBeLessThan(10_000);
    expect(r.stderr).toMatch(/INTERRUPTED: stopped by SIGTERM/);
    expect(await db().selectFrom('job_leases').selectAll().execute()).toEqual([]);
    expect(scratchCopies()).toEqual([]);
    const [run] = await e.env.t.appliance.scheduler.runs('backup', 1);
    expect(run).toMatchObject({ trigger: 'cli', outcome: 'failed', error: expect.stringMatching(/^BACKUP_ABORTED/) });
    const again = await coffre(['backup', 'run', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(atTarget(e.targetDir).other).toEqual([]); // the stopped run's temporary directory removed by this one
  });

  it('SIGINT mid-verify: exit 130, the decrypted copy removed, the backup not marked as failed', async () => {
    const id = (await e.service.find('latest')).id;
    const { child, ended } = start(['backup', 'verify', id, '--json']);
    await until('the decrypted copy', () => scratchCopies().some((n) => n.startsWith('verify-')), child);
    child.kill('SIGINT');
    const r = await ended;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/INTERRUPTED: stopped by SIGINT/);
    expect(scratchCopies()).toEqual([]);
    expect(await db().selectFrom('job_leases').selectAll().execute()).toEqual([]);
    expect(
      await db().selectFrom('backups').select(['state', 'error']).where('id', '=', id).executeTakeFirstOrThrow(),
    ).toEqual({ state: 'complete', error: null });
  });

  it('SIGTERM mid-drill: exit 143, the restored copy removed, no failed drill recorded nor alerted', async () => {
    const alerts = (await e.alerts()).length;
    const checks = (await db().selectFrom('backup_checks').select('id').where('kind', '=', 'drill').execute()).length;
    const { child, ended } = start(['backup', 'drill']);
    await until('the restore', () => scratchCopies().some((n) => n.startsWith('drill-')), child);
    child.kill('SIGTERM');
    const r = await ended;
    expect(r.code, r.stderr).toBe(143);
    expect(scratchCopies()).toEqual([]);
    expect(await db().selectFrom('job_leases').selectAll().execute()).toEqual([]);
    expect((await e.alerts()).length).toBe(alerts);
    expect((await db().selectFrom('backup_checks').select('id').where('kind', '=', 'drill').execute()).length).toBe(
      checks,
    );
  });

  it('SIGKILL mid-upload: verify and run work at once (leases taken over, said so), the killed run marked abandoned, its snapshot swept', async () => {
    const { child, ended } = start(['backup', 'run']);
    await until('the upload', uploadingParts, child);
    child.kill('SIGKILL');
    await ended;
    expect((await db().selectFrom('job_leases').select('name').orderBy('name').execute()).map((l) => l.name)).toEqual([
      'backup',
      'backup.targets',
    ]);
    expect(scratchCopies().some((n) => n.startsWith('snapshot-'))).toBe(true);
    const v = await coffre(['backup', 'verify', '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain(`took over the lease of process ${child.pid} on host ${os.hostname()}`);
    expect(scratchCopies()).toEqual([]);
    const [killed] = await e.env.t.appliance.scheduler.runs('backup', 1);
    expect(killed?.outcome).toBe('running'); // until the next run of the job
    const r = await coffre(['backup', 'run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `note: job backup: took over the lease of process ${child.pid} on host ${os.hostname()}, which is no longer running; run #${killed!.id} of a stopped process marked abandoned`,
    );
    expect((await e.env.t.appliance.scheduler.runs('backup', 2)).map((x) => x.outcome)).toEqual([
      'succeeded',
      'abandoned',
    ]);
    expect(await db().selectFrom('job_leases').selectAll().execute()).toEqual([]);
  });

  it('keys rotate after a killed rotation: taken over at once, and the message says so', async () => {
    // the lease a killed `coffre keys rotate` leaves (holder: a process of this host that no longer exists)
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const now = Date.now(); // the CLI's clock is the real one
    await db()
      .insertInto('job_leases')
      .values({
        name: 'keys.rotate',
        holder: `${os.hostname()}:${dead.pid}:0badc0de`,
        acquired_at: now,
        expires_at: now + 120_000,
      })
      .execute();
    const r = await coffre(['keys', 'rotate', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `note: job keys.rotate: took over the lease of process ${dead.pid} on host ${os.hostname()}, which is no longer running`,
    );
  });

  it('SIGTERM to `coffre serve` during a backup: it stops within the grace, writes nothing after closing the database, and exits', async () => {
    const served = await startServe(e.env.t.dataDir, 0, { ...cliEnv, ...NO_MFA, COFFRE_CFG_jobs__enabled: 'false' });
    const exited = new Promise<number | null>((r) => served.child.once('exit', (code) => r(code)));
    const ca = fs.readFileSync(path.join(e.env.t.dataDir, 'tls', 'cert.pem'));
    const status = await new Promise<number>((resolve, reject) => {
      https
        .request(
          {
            host: '127.0.0.1',
            port: new URL(served.url).port,
            path: '/api/v1/backup/run',
            method: 'POST',
            ca,
            servername: 'localhost',
            headers: { authorization: `Bearer ${operator.token}` },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        )
        .on('error', reject)
        .end();
    });
    expect(status).toBe(202);
    await until('the upload', uploadingParts, served.child);
    // the run is stuck (the target's SFTP processes frozen) when the stop comes, as in the field
    const frozen = e.sshd.sftpServers();
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const t0 = performance.now();
    let code: number | null;
    let took: number;
    try {
      served.child.kill('SIGTERM');
      code = await exited;
      took = performance.now() - t0;
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGKILL');
    }
    expect(code, served.logs()).toBe(0);
    expect(took).toBeLessThan(15_000); // http.shutdownGraceMs (10 s) at most
    const logs = served.logs();
    const stopped = logs.indexOf('"event":"appliance.stopped"');
    expect(stopped, logs).toBeGreaterThan(0);
    expect(logs.slice(stopped)).not.toMatch(/destroyed|unhandled|"level":(50|60)/);
    const [run] = await e.env.t.appliance.scheduler.runs('backup', 1);
    expect(run).toMatchObject({ trigger: 'api', outcome: 'failed', error: expect.stringMatching(/^BACKUP_ABORTED/) });
    expect(await db().selectFrom('job_leases').selectAll().execute()).toEqual([]);
    expect(scratchCopies()).toEqual([]);
  });
});
