import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, type User, type VaultEnv } from '../vault/support.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

/**
 * `coffre incident …`: the real CLI (dist/) against a served appliance over HTTPS, with an admin's
 * and an auditor's API tokens: the life cycle (resolve refused while an action is open, exit 1 with
 * the code), the report written to a file, the auditor refused writes (exit 4), bad usage (exit 2).
 */
let e: VaultEnv;
let admin: User;
let auditor: User;
let remote: NodeJS.ProcessEnv;
const dir = tempDir('coffre-incident-cli-');

const cli = async (who: User, args: string[]) => {
  const r = await runCli(args, { env: { ...remote, COFFRE_TOKEN: who.token, COFFRE_DATA_DIR: '' } });
  let obj: Record<string, unknown> = {};
  try {
    obj = JSON.parse(r.stdout.trim() || '{}') as Record<string, unknown>;
  } catch {
    /* human output */
  }
  return { ...r, obj };
};

beforeAll(async () => {
  e = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  admin = await e.user('adm', 'admin');
  auditor = await e.user('aud', 'auditor');
  remote = { COFFRE_URL: `https://127.0.0.1:${e.port}`, COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem') };
}, 120_000);
afterAll(async () => {
  await e?.close();
});

describe('coffre incident', { timeout: 120_000 }, () => {
  it('open, act, refuse to resolve with an open action, close it, resolve, export; an auditor reads and exports but cannot write', async () => {
    let r = await cli(admin, [
      'incident',
      'open',
      'Payroll export sent to the wrong firm',
      '--severity',
      'high',
      '--personal-data',
      '--component',
      'vault',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.obj.id as string;
    expect(r.obj).toMatchObject({ status: 'investigating', personalData: true, breachClock: { state: 'running' } });
    r = await cli(admin, [
      'incident',
      'action',
      'add',
      id,
      '--kind',
      'corrective',
      '--description',
      'recall the message',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const action = r.obj.id as string;
    r = await cli(admin, ['incident', 'update', id, '--status', 'resolved', '--message', 'done']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^INCIDENT_ACTIONS_OPEN: 1 corrective or preventive action/m);
    expect(
      (await cli(admin, ['incident', 'action', 'close', id, action, '--outcome', 'recalled', '--json'])).obj,
    ).toMatchObject({ state: 'closed' });
    fs.writeFileSync(
      path.join(dir, 'breach.json'),
      JSON.stringify({ nature: 'confidentiality', subjectsApprox: 240, recordsApprox: 2880 }),
    );
    expect(
      (
        await cli(admin, [
          'incident',
          'edit',
          id,
          '--root-cause',
          'wrong distribution list',
          '--breach-file',
          path.join(dir, 'breach.json'),
          '--json',
        ])
      ).code,
    ).toBe(0);
    r = await cli(admin, ['incident', 'update', id, '--status', 'resolved', '--message', 'done', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.obj.status).toBe('resolved');

    r = await cli(auditor, ['incident', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^${id}  resolved +high +Payroll export sent to the wrong firm  \\[personal data\\]$`, 'm'),
    );
    const out = path.join(dir, 'report.csv');
    r = await cli(auditor, ['incident', 'report', id, '--format', 'csv', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toContain('gdpr.subjectsApprox,240\r\n');
    r = await cli(auditor, ['incident', 'update', id, '--status', 'investigating', '--message', 'reopen']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^FORBIDDEN/m);
  });

  it('bad usage exits 2 before anything is sent; an unknown incident exits 1 with its code', async () => {
    expect((await cli(admin, ['incident', 'open', 'x', '--severity', 'apocalyptic'])).code).toBe(2);
    expect((await cli(admin, ['incident', 'open', 'x', '--severity', 'low', '--detected-at', 'yesterday'])).code).toBe(
      2,
    );
    const r = await cli(admin, ['incident', 'show', '00000000-0000-4000-8000-000000000000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^INCIDENT_NOT_FOUND/m);
  });
});
