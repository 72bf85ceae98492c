import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import type { User } from '../vault/support.js';

/**
 * Faults a bank's SRE team injects before trusting the backups: the target's SFTP server process
 * killed or frozen mid-upload while its SSH connection stays up, two runs asked for at once (what
 * a killed run leaves behind: leftovers.test.ts). Real sshd, real HSM; only the clock is fake.
 */
let e: BackupEnv;
let operator: User;
const STALL_MS = 3000;
beforeAll(async () => {
  e = await openBackupEnv({
    COFFRE_CFG_backup__retries: '0', // one failure fails the run: what the operator sees
    COFFRE_CFG_backup__stallTimeoutMs: String(STALL_MS),
    COFFRE_CFG_backup__bandwidthLimitKiBps: '768', // ~3 MB of documents: a few seconds of upload to interrupt
    COFFRE_CFG_auth__mfa__requiredRoles: '["admin"]', // the API-level test signs the operator in with a password only
  });
  await e.upload('ledger.xlsx', randomDoc(1_500_000));
  await e.upload('minutes.pdf', randomDoc(1_500_000));
  await e.addTarget('dr');
  operator = await e.env.user('op', 'backup-operator');
});
afterAll(async () => {
  await e?.close();
});

const db = () => e.env.t.appliance.db.db;
const run = () => e.service.run({ actor: 'job:backup' });
const nextDay = () => e.env.clock.advance(24 * 3_600_000);

/** the error a run ends with (null when it succeeds) */
const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (x: unknown) => x as { code: string; message: string },
  );

/** resolves once the run is uploading parts (a `.tmp-<id>/part-*` file at the target) */
async function uploading(): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const tmp = fs.existsSync(e.targetDir) ? fs.readdirSync(e.targetDir).find((n) => n.startsWith('.tmp-')) : undefined;
    if (tmp && fs.readdirSync(path.join(e.targetDir, tmp)).some((f) => f.includes('part-'))) return;
    if (Date.now() > until) throw new Error('the upload never got under way');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('backup under faults', { timeout: 240_000 }, () => {
  it("the target's SFTP process killed mid-upload: the run fails at once, with an alert; the next run succeeds", async () => {
    nextDay();
    const alertsBefore = (await e.alerts()).length;
    const p = failureOf(run());
    await uploading();
    const t0 = performance.now();
    const killed = e.sshd.sftpServers();
    expect(killed.length).toBeGreaterThan(0);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const err = await p;
    const took = performance.now() - t0;
    expect(err).toMatchObject({ code: 'TARGET_UNREACHABLE', message: expect.stringContaining('SFTP process ended') });
    expect(took).toBeLessThan(STALL_MS + 5000);
    expect((await e.alerts()).slice(alertsBefore)).toContain('backup.failed');
    expect(atTarget(e.targetDir).other.filter((n) => !n.startsWith('.tmp-'))).toEqual([]);
    nextDay();
    expect((await run()).ok).toBe(true);
  });

  it("the target's SFTP process frozen mid-upload: TARGET_STALLED within the stall deadline, an alert naming it; the next run succeeds", async () => {
    nextDay();
    const p = failureOf(run());
    await uploading();
    const t0 = performance.now();
    const frozen = e.sshd.sftpServers();
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    let err: { code: string; message: string } | null;
    try {
      err = await p;
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGKILL');
    }
    const took = performance.now() - t0;
    expect(err, err?.message).toMatchObject({ code: 'TARGET_STALLED' });
    expect(took).toBeGreaterThan(STALL_MS - 500);
    expect(took).toBeLessThan(STALL_MS + 15_000); // the deadline, then the failure recorded and audited
    const alert = await db()
      .selectFrom('alerts')
      .select(['kind', 'message'])
      .orderBy('at', 'desc')
      .executeTakeFirstOrThrow();
    expect(alert).toMatchObject({ kind: 'backup.failed', message: expect.stringContaining('TARGET_STALLED') });
    const [job] = await e.env.t.appliance.scheduler.runs();
    expect(job?.outcome).not.toBe('running');
    nextDay();
    expect((await run()).ok).toBe(true);
  });

  it('two backups asked for at once (one process): the second gets 409 with the running run’s id, the first completes', async () => {
    nextDay();
    const first = await e.env.req('POST', '/api/v1/backup/run', { token: operator.token });
    expect(first.status, first.body.toString()).toBe(202);
    const second = await e.env.req('POST', '/api/v1/backup/run', { token: operator.token });
    expect(second.status, second.body.toString()).toBe(409);
    const running = (await e.env.t.appliance.scheduler.runs('backup')).find((r) => r.outcome === 'running');
    expect(running).toBeDefined();
    expect(second.json<{ error: { code: string; details: { runId: number } } }>().error).toMatchObject({
      code: 'JOB_BUSY',
      details: { runId: running!.id },
    });
    // a verification asked for meanwhile is refused the same way, naming the backup run
    const verify = await e.env.req('POST', '/api/v1/backup/backups/latest/verify', { token: operator.token });
    expect(verify.status, verify.body.toString()).toBe(409);
    expect(verify.json<{ error: { code: string; details: { runId: number } } }>().error).toMatchObject({
      code: 'BACKUP_BUSY',
      details: { runId: running!.id },
    });
    // the first one completes (nobody deleted its temporary directory)
    const until = Date.now() + 120_000;
    for (;;) {
      const r = (await e.env.t.appliance.scheduler.runs('backup')).find((x) => x.id === running!.id)!;
      if (r.outcome !== 'running') {
        expect(r.outcome, r.error ?? '').toBe('succeeded');
        break;
      }
      if (Date.now() > until) throw new Error('the backup did not end');
      await new Promise((res) => setTimeout(res, 100));
    }
  });
});
