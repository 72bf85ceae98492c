import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, type User, type VaultEnv } from '../vault/support.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { Leases, makeHolderId } from '../../src/jobs/leases.js';
import { systemClock } from '../../src/shared/clock.js';
import { EXIT } from '../../src/cli/exit-codes.js';

/**
 * The exit-code table of `coffre` (docs/cli.md), one case per code, through the real CLI process
 * against a served appliance (client verbs) and its data directory (local verbs). With `--json`,
 * every failure prints exactly one object on stdout: ok, code, message, hint, exitCode.
 */
let e: VaultEnv;
let alice: User;
let client: NodeJS.ProcessEnv;
const LYON = ['--jurisdiction', 'FR', '--lat', '45.764', '--lon', '4.8357'];
const MARSEILLE = ['--jurisdiction', 'FR', '--lat', '43.2965', '--lon', '5.3698'];
const targets = tempDir('coffre-exit-targets-');

const local = (args: string[]) =>
  runCli([...args, '--data-dir', e.t.dataDir, '--json'], {
    env: { COFFRE_CFG_backup__retries: '1', COFFRE_CFG_backup__retryBaseMs: '20' },
  });
const failure = (stdout: string) => {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as { ok: boolean; code: string; message: string; hint?: string; exitCode: number };
};

beforeAll(async () => {
  e = await openVaultEnv();
  alice = await e.user('alice');
  client = {
    COFFRE_URL: `https://127.0.0.1:${e.port}`,
    COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
    COFFRE_TOKEN: alice.token,
  };
});
afterAll(async () => {
  await e?.close();
});

describe('coffre exit codes', { timeout: 180_000 }, () => {
  it('0 done, 1 failed, 2 usage: --json prints one object either way', async () => {
    const ok = await runCli(['workspace', 'list', '--json'], { env: client });
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    expect(JSON.parse(ok.stdout)).toHaveProperty('workspaces');

    const missing = await runCli(
      ['doc', 'get', '00000000-0000-4000-8000-000000000000', '-o', path.join(targets, 'x'), '--json'],
      { env: client },
    );
    expect(missing.code).toBe(EXIT.failed);
    expect(failure(missing.stdout)).toMatchObject({ ok: false, code: 'DOCUMENT_NOT_FOUND', exitCode: 1 });
    expect(missing.stderr).toMatch(/^DOCUMENT_NOT_FOUND: /);

    const usage = await runCli(['workspace', 'list', '--no-such-flag', '--json'], { env: client });
    expect(usage.code).toBe(EXIT.usage);
    expect(failure(usage.stdout)).toMatchObject({ ok: false, code: 'USAGE', exitCode: 2 });
  });

  it('4 authentication or permission: a revoked or made-up token', async () => {
    const r = await runCli(['workspace', 'list', '--json'], {
      env: { ...client, COFFRE_TOKEN: 'cft_not-a-real-token-0000000000000000' },
    });
    expect(r.code).toBe(EXIT.auth);
    expect(failure(r.stdout)).toMatchObject({ ok: false, code: 'UNAUTHENTICATED', exitCode: 4 });
  });

  it('6 unreachable: nothing listens at COFFRE_URL', async () => {
    const r = await runCli(['workspace', 'list', '--json'], { env: { ...client, COFFRE_URL: 'https://127.0.0.1:1' } });
    expect(r.code).toBe(EXIT.unreachable);
    expect(failure(r.stdout)).toMatchObject({ ok: false, code: 'UNREACHABLE', exitCode: 6, hint: expect.any(String) });
  });

  it('3 partial: one target of two failed; 5 busy: another holder has the backup lease', async () => {
    const a = path.join(targets, 'lyon');
    const b = path.join(targets, 'marseille');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    for (const [name, dir, site] of [
      ['lyon', a, LYON],
      ['marseille', b, MARSEILLE],
    ] as const) {
      const r = await local(['backup', 'target', 'add', name, '--type', 'path', '--url', `file://${dir}`, ...site]);
      expect(r.code, r.stderr).toBe(0);
    }
    // the share at Marseille is unmounted: its directory is gone
    fs.rmSync(b, { recursive: true });
    const run = await local(['backup', 'run']);
    expect(run.code, run.stderr).toBe(EXIT.partial);
    const report = failure(run.stdout) as unknown as {
      ok: boolean;
      exitCode: number;
      targets: { target: string; ok: boolean }[];
    };
    expect(report).toMatchObject({ ok: false, exitCode: 3 });
    expect(report.targets.map((t) => [t.target, t.ok]).sort()).toEqual([
      ['lyon', true],
      ['marseille', false],
    ]);

    // this process (alive, this host) holds the daily backup's lease, as a running job would
    const leases = new Leases(e.t.appliance.db.db, systemClock, makeHolderId(), 3_600_000);
    expect(await leases.acquire('backup')).toBe(true);
    try {
      const busy = await local(['backup', 'run']);
      expect(busy.code, busy.stderr).toBe(EXIT.busy);
      expect(failure(busy.stdout)).toMatchObject({ ok: false, exitCode: 5 });
    } finally {
      await leases.release('backup');
    }
  });
  it('6 unreachable, at once: registering a target that cannot be reached does not retry', async () => {
    const t0 = Date.now();
    // default retries and back-off (the daily run keeps them); the operator at the prompt gets the cause now
    const r = await runCli([
      'backup',
      'target',
      'add',
      'gone',
      '--type',
      'path',
      '--url',
      `file://${targets}/not-mounted`,
      ...LYON,
      '--data-dir',
      e.t.dataDir,
      '--json',
    ]);
    const tookMs = Date.now() - t0;
    expect(r.code, r.stderr).toBe(EXIT.unreachable);
    expect(failure(r.stdout)).toMatchObject({ code: 'TARGET_UNREACHABLE', message: expect.stringMatching(/absent/) });
    expect(r.stderr).not.toMatch(/retrying/);
    expect(tookMs).toBeLessThan(15_000); // the CLI's own start is most of it; four retries took ~32 s
  });

  it('7 integrity: an altered audit trail', async () => {
    const file = path.join(e.t.dataDir, 'coffre.db');
    expect(fs.existsSync(file)).toBe(true);
    const copy = tempDir('coffre-exit-audit-');
    // a copy of the appliance whose trail was altered: the live one stays intact for the other cases
    fs.cpSync(e.t.dataDir, copy, { recursive: true });
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path.join(copy, 'coffre.db'));
    db.prepare(`UPDATE audit_events SET actor = 'user:someone' WHERE seq = (SELECT MIN(seq) FROM audit_events)`).run();
    db.close();
    const r = await runCli(['audit', 'verify', '--data-dir', copy, '--json']);
    expect(r.code).toBe(EXIT.integrity);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false });
    expect(r.stderr).toMatch(/^AUDIT_TAMPERED: /m);
  });
});
