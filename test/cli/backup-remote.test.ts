import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { createGpg } from '../support/gpg.js';

/**
 * Every backup operator verb from "another host": the real CLI with a backup operator's own token
 * (COFFRE_URL, COFFRE_TOKEN, COFFRE_CA) against a served appliance, and locally on its data
 * directory: the same JSON shape either way, and the audit trail names the operator, not root.
 */
let e: VaultEnv;
let op: User;
let admin: User;
let remote: NodeJS.ProcessEnv;
/** how the trail names the operator acting through their API token: `token:<id>` of a token of theirs */
let opActor: string;
const dirs = tempDir('coffre-remote-targets-');
const LYON = ['--jurisdiction', 'FR', '--lat', '45.764', '--lon', '4.8357'];
const MARSEILLE = ['--jurisdiction', 'FR', '--lat', '43.2965', '--lon', '5.3698'];
const FAST = { COFFRE_CFG_backup__retries: '1', COFFRE_CFG_backup__retryBaseMs: '20' };
// the operator signs in with a password alone here: the second factor is not what this file tests
const NO_MFA = { COFFRE_CFG_auth__mfa__requiredRoles: '[]' };

const viaApi = async (args: string[]) => {
  const r = await runCli([...args, '--json'], { env: { ...remote, COFFRE_DATA_DIR: '' } });
  return { ...r, obj: JSON.parse(r.stdout.trim() || '{}') as Record<string, unknown> };
};
/** an admin (another person) approves a request the operator's verb returned (two-person rule) */
const approve = async (pending: Record<string, unknown>) => {
  expect(pending).toMatchObject({ status: 'pending', request: { state: 'pending' } });
  const r = await runCli(['backup', 'request', 'approve', (pending.request as { id: string }).id, '--json'], {
    env: { ...remote, COFFRE_TOKEN: admin.token, COFFRE_DATA_DIR: '' },
  });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { request: { state: string }; result: Record<string, unknown> };
};
const onBox = async (args: string[]) => {
  const r = await runCli([...args, '--data-dir', e.t.dataDir, '--json'], {
    env: { ...FAST, ...NO_MFA, COFFRE_URL: '' },
  });
  return { ...r, obj: JSON.parse(r.stdout.trim() || '{}') as Record<string, unknown> };
};
/** the keys of an object and of its first-level arrays' first items: the "shape" a script relies on */
const shape = (o: Record<string, unknown>): unknown =>
  Object.fromEntries(
    Object.entries(o).map(([k, v]) => [
      k,
      Array.isArray(v)
        ? v[0] && typeof v[0] === 'object'
          ? Object.keys(v[0] as object).sort()
          : 'array'
        : v === null
          ? 'null-or-value'
          : typeof v,
    ]),
  );
const sameShape = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  const sa = shape(a) as Record<string, unknown>;
  const sb = shape(b) as Record<string, unknown>;
  for (const k of Object.keys(sa))
    if (Array.isArray(sa[k]) && Array.isArray(sb[k]) && (sa[k] as unknown[]).length && (sb[k] as unknown[]).length)
      expect(sa[k]).toEqual(sb[k]);
};

beforeAll(async () => {
  e = await openVaultEnv({ ...FAST, ...NO_MFA });
  const alice = await e.user('alice');
  const ws = await e.workspace(alice);
  await upload(e, alice, ws, 'minutes.pdf', Buffer.from('board minutes, strictly confidential'));
  op = await e.user('op', 'backup-operator');
  admin = await e.user('adm', 'admin');
  const tok = await e.t.appliance.db.db
    .selectFrom('api_tokens')
    .select('id')
    .where('user_id', '=', op.id)
    .executeTakeFirstOrThrow();
  opActor = `token:${tok.id}`;
  remote = {
    COFFRE_URL: `https://127.0.0.1:${e.port}`,
    COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
    COFFRE_TOKEN: op.token,
  };
});
afterAll(async () => {
  await e?.close();
});

describe('backup operator verbs, remote and local', { timeout: 300_000 }, () => {
  it('targets and escrow: remotely a request an admin approves, locally at once; the trail names the operator', async () => {
    fs.mkdirSync(path.join(dirs, 'lyon'));
    fs.mkdirSync(path.join(dirs, 'marseille'));
    const addR = await viaApi([
      'backup',
      'target',
      'add',
      'lyon',
      '--type',
      'path',
      '--url',
      `file://${dirs}/lyon`,
      ...LYON,
    ]);
    expect(addR.code, addR.stderr).toBe(0);
    expect(addR.obj).toMatchObject({
      status: 'pending',
      request: { kind: 'target.add', change: { target: { name: 'lyon', type: 'path', jurisdiction: 'FR' } } },
    });
    expect((await approve(addR.obj)).result).toMatchObject({ name: 'lyon' });
    const addL = await onBox([
      'backup',
      'target',
      'add',
      'marseille',
      '--type',
      'path',
      '--url',
      `file://${dirs}/marseille`,
      ...MARSEILLE,
    ]);
    expect(addL.code, addL.stderr).toBe(0);
    expect(addL.obj).toMatchObject({ name: 'marseille', type: 'path', jurisdiction: 'FR' });

    const listR = await viaApi(['backup', 'target', 'list']);
    const listL = await onBox(['backup', 'target', 'list']);
    expect(listR.code, listR.stderr).toBe(0);
    expect(listR.obj).toEqual(listL.obj);

    // the appliance runs on a fake clock: a key made "now" would be signed in its future
    const gpg = createGpg('cv25519', { at: new Date(e.clock.nowMs() - 3_600_000) });
    try {
      const key = path.join(dirs, 'escrow.asc');
      fs.writeFileSync(key, gpg.publicKey);
      const esc = await viaApi(['backup', 'escrow', 'add', '--public-key', key]);
      expect(esc.code, esc.stderr).toBe(0);
      expect(esc.obj).toMatchObject({ status: 'pending', request: { change: { fingerprint: gpg.fingerprint } } });
      await approve(esc.obj);
      const escL = await onBox(['backup', 'escrow', 'list']);
      const escR = await viaApi(['backup', 'escrow', 'list']);
      expect(escR.obj).toEqual(escL.obj);
    } finally {
      gpg.close();
    }

    const trail = await e.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['action', 'actor'])
      .where('action', 'in', ['backup.target.add', 'backup.escrow.add'])
      .execute();
    // asked with the operator's token, applied in the operator's name once an admin approved
    expect(trail).toEqual(
      expect.arrayContaining([
        { action: 'backup.target.add', actor: `user:${op.id}` },
        { action: 'backup.escrow.add', actor: `user:${op.id}` },
      ]),
    );
    const asked = await e.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['action', 'actor'])
      .where('action', '=', 'backup.request.create')
      .execute();
    expect(asked).toEqual([
      { action: 'backup.request.create', actor: opActor },
      { action: 'backup.request.create', actor: opActor },
    ]);
    // the target added on the box is recorded as the local OS user, the remote ones as the operator
    expect(trail.filter((r) => r.actor.startsWith('local:')).map((r) => r.action)).toEqual(['backup.target.add']);
  });

  it('run, list, verify, drill, status: same JSON remotely and locally; --no-wait returns a run id to follow', async () => {
    const runR = await viaApi(['backup', 'run']);
    expect(runR.code, runR.stderr).toBe(0);
    const runL = await onBox(['backup', 'run']);
    expect(runL.code, runL.stderr).toBe(0);
    sameShape(runR.obj, runL.obj);
    expect((runR.obj['targets'] as { ok: boolean }[]).every((t) => t.ok)).toBe(true);

    const listR = await viaApi(['backup', 'list', '--all']);
    const listL = await onBox(['backup', 'list', '--all']);
    expect(listR.obj).toEqual(listL.obj);
    expect((listR.obj['backups'] as unknown[]).length).toBeGreaterThanOrEqual(2);

    const verR = await viaApi(['backup', 'verify', 'latest']);
    expect(verR.code, verR.stderr).toBe(0);
    const verL = await onBox(['backup', 'verify', 'latest']);
    sameShape(verR.obj, verL.obj);

    const drR = await viaApi(['backup', 'drill']);
    expect(drR.code, drR.stderr).toBe(0);
    const drL = await onBox(['backup', 'drill']);
    sameShape(drR.obj, drL.obj);

    const started = await viaApi(['backup', 'verify', 'latest', '--no-wait']);
    expect(started.code, started.stderr).toBe(0);
    expect(started.obj).toMatchObject({ status: 'started', job: 'backup.verify', runId: expect.any(Number) });
    const followed = await viaApi(['backup', 'status', String(started.obj['runId'])]);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.obj, JSON.stringify(followed.obj)).toMatchObject({
      runId: started.obj['runId'],
      job: 'backup.verify',
      outcome: 'succeeded',
      actor: opActor,
    });
    const local = await onBox(['backup', 'status', String(started.obj['runId']), '--no-wait']);
    expect(local.obj).toEqual(followed.obj);

    const trail = await e.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['action', 'actor'])
      .where('actor', '=', opActor)
      .execute();
    expect(trail.map((r) => r.action)).toEqual(expect.arrayContaining(['backup.run', 'backup.verify', 'backup.drill']));
  });

  it('a failure remotely exits and prints as it does locally: partial (3), unknown run (1), no token (2), a member (4)', async () => {
    fs.rmSync(path.join(dirs, 'marseille'), { recursive: true });
    const r = await viaApi(['backup', 'run']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.obj).toMatchObject({ ok: false, exitCode: 3 });
    expect((r.obj['targets'] as { target: string; ok: boolean }[]).map((t) => [t.target, t.ok]).sort()).toEqual([
      ['lyon', true],
      ['marseille', false],
    ]);
    const l = await onBox(['backup', 'run']);
    expect(l.code).toBe(3);
    expect(Object.keys(l.obj).sort()).toEqual(Object.keys(r.obj).sort());

    const none = await viaApi(['backup', 'status', '999999']);
    expect(none.code).toBe(1);
    expect(none.obj).toMatchObject({ ok: false, code: 'NOT_FOUND' });

    const noToken = await runCli(['backup', 'list', '--json'], {
      env: { ...remote, COFFRE_TOKEN: '', COFFRE_DATA_DIR: '' },
    });
    expect(noToken.code).toBe(2);
    const member = await e.user('mallory');
    const denied = await runCli(['backup', 'target', 'list', '--json'], {
      env: { ...remote, COFFRE_TOKEN: member.token, COFFRE_DATA_DIR: '' },
    });
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stdout)).toMatchObject({ ok: false, code: 'FORBIDDEN', exitCode: 4 });
  });
});
