import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { createGpg } from '../support/gpg.js';
import { changeDigest, type Change } from '../../src/backup/index.js';

/**
 * Two-person rule (src/backup/requests.ts), played as the attacker: a backup operator alone, with
 * their own escrow key and a /tmp directory declared as a distant site, through the real CLI over
 * HTTPS with their own token. Nothing is written anywhere new until another person with the admin
 * role approves exactly the requested change.
 */
let e: VaultEnv;
let op: User;
let op2: User;
let admin: User;
let admin2: User;
let auditor: User;
let member: User;
const dirs = tempDir('coffre-approvals-');
const LYON = ['--jurisdiction', 'FR', '--lat', '45.764', '--lon', '4.8357'];
const FAST = { COFFRE_CFG_backup__retries: '1', COFFRE_CFG_backup__retryBaseMs: '20' };
const NO_MFA = { COFFRE_CFG_auth__mfa__requiredRoles: '[]' };

const cli = async (who: User, args: string[]) => {
  const r = await runCli([...args, '--json'], {
    env: {
      COFFRE_URL: `https://127.0.0.1:${e.port}`,
      COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
      COFFRE_TOKEN: who.token,
      COFFRE_DATA_DIR: '',
    },
  });
  let obj: Record<string, any> = {};
  try {
    obj = JSON.parse(r.stdout.trim() || '{}');
  } catch {
    /* human output */
  }
  return { ...r, obj };
};
const db = () => e.t.appliance.db.db;
const targets = async () => (await db().selectFrom('backup_targets').select('name').execute()).map((r) => r.name);
const escrows = async () =>
  (await db().selectFrom('backup_escrow_keys').select('fingerprint').execute()).map((r) => r.fingerprint);
const trail = async (prefix: string) =>
  (
    await db()
      .selectFrom('audit_events')
      .select(['action', 'actor', 'outcome', 'reason'])
      .where('action', 'like', `${prefix}%`)
      .orderBy('seq')
      .execute()
  ).map((r) => ({ ...r, reason: r.reason ?? null }));

beforeAll(async () => {
  e = await openVaultEnv({ ...FAST, ...NO_MFA });
  const alice = await e.user('alice');
  const ws = await e.workspace(alice);
  await upload(e, alice, ws, 'minutes.pdf', Buffer.from('board minutes, strictly confidential'));
  op = await e.user('op', 'backup-operator');
  op2 = await e.user('op2', 'backup-operator');
  admin = await e.user('adm', 'admin');
  admin2 = await e.user('adm2', 'admin');
  auditor = await e.user('aud', 'auditor');
  member = await e.user('mem');
}, 120_000);
afterAll(async () => {
  await e?.close();
});

describe('two-person rule on targets and escrow keys', { timeout: 300_000 }, () => {
  it('an operator alone, with their own escrow key and a /tmp target, gets nothing written anywhere new; an admin approves exactly the requested change', async () => {
    const loot = fs.mkdtempSync('/tmp/coffre-loot-');
    const gpg = createGpg('cv25519', { at: new Date(e.clock.nowMs() - 3_600_000) });
    try {
      const keyFile = path.join(dirs, 'mine.asc');
      fs.writeFileSync(keyFile, gpg.publicKey);

      // the operator asks: exit 0, a pending request, nothing registered, the directory untouched
      const esc = await cli(op, ['backup', 'escrow', 'add', '--public-key', keyFile]);
      expect(esc.code, esc.stderr).toBe(0);
      expect(esc.obj).toMatchObject({
        status: 'pending',
        request: {
          kind: 'escrow.add',
          state: 'pending',
          change: { fingerprint: gpg.fingerprint },
          requestedBy: `user:${op.id}`,
        },
      });
      expect(JSON.stringify(esc.obj)).not.toContain('BEGIN PGP');
      const tgt = await cli(op, [
        'backup',
        'target',
        'add',
        'lyon',
        '--type',
        'path',
        '--url',
        `file://${loot}`,
        ...LYON,
      ]);
      expect(tgt.code, tgt.stderr).toBe(0);
      expect(tgt.obj).toMatchObject({
        status: 'pending',
        request: { kind: 'target.add', change: { target: { name: 'lyon', url: `file://${loot}` } } },
      });
      const human = await runCli(['backup', 'escrow', 'remove', gpg.fingerprint], {
        env: {
          COFFRE_URL: `https://127.0.0.1:${e.port}`,
          COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
          COFFRE_TOKEN: op.token,
          COFFRE_DATA_DIR: '',
        },
      });
      // the key is not registered yet: removing it is refused at once, nothing requested
      expect(human.code).toBe(1);
      expect(human.stderr).toMatch(/^ESCROW_KEY_NOT_FOUND: /m);
      expect(await targets()).toEqual([]);
      expect(await escrows()).toEqual([]);
      expect(fs.readdirSync(loot)).toEqual([]);

      // a backup run now has nowhere to go; /tmp stays empty
      await e.t.appliance.backup.run({ actor: 'local:test' }).catch(() => undefined);
      expect(fs.readdirSync(loot)).toEqual([]);

      // the operator cannot approve (no backup:approve), nor can a second operator, an auditor, a member
      for (const who of [op, op2, auditor, member]) {
        const r = await cli(who, ['backup', 'request', 'approve', tgt.obj.request.id]);
        expect(r.code, `${who.username}: ${r.stderr}`).toBe(4);
      }
      for (const who of [op, op2]) {
        const r = await e.req('POST', `/api/v1/backup/requests/${tgt.obj.request.id}/approve`, {
          token: who.token,
          json: { digest: tgt.obj.request.digest },
        });
        expect(r.status).toBe(403);
      }
      expect(await targets()).toEqual([]);

      // everyone who should sees them pending: operators and auditors at /backup/requests, admins at /backup/approvals
      const listOp = await cli(op, ['backup', 'request', 'list']);
      expect(listOp.obj.requests.map((r: { id: string }) => r.id).sort()).toEqual(
        [esc.obj.request.id, tgt.obj.request.id].sort(),
      );
      const listAdm = await cli(admin, ['backup', 'request', 'list']);
      expect(listAdm.obj).toEqual(listOp.obj);
      expect((await e.req('GET', '/api/v1/backup/requests', { token: auditor.token })).status).toBe(200);
      expect((await e.req('GET', '/api/v1/backup/requests', { token: member.token })).status).toBe(403);
      expect((await e.req('GET', '/api/v1/backup/approvals', { token: op.token })).status).toBe(403);

      // a new request alerts (admins and auditors receive alerts); the message holds no key text
      const alerts = await db()
        .selectFrom('alerts')
        .select(['kind', 'message'])
        .where('kind', '=', 'backup.change-requested')
        .execute();
      expect(
        alerts.length,
        JSON.stringify(await db().selectFrom('alerts').select(['kind', 'message', 'targets', 'repeats']).execute()),
      ).toBe(2);
      expect(alerts.map((a) => a.message).join('\n')).toContain(tgt.obj.request.id);

      // an admin approves with a digest other than the stored change's: refused, nothing applied
      const wrong = await e.req('POST', `/api/v1/backup/requests/${tgt.obj.request.id}/approve`, {
        token: admin.token,
        json: { digest: '0'.repeat(64) },
      });
      expect(wrong.status).toBe(409);
      expect(wrong.json().error.code).toBe('REQUEST_DIGEST_MISMATCH');
      expect(await targets()).toEqual([]);

      // an admin approves both through the CLI: exactly the requested changes are applied
      const a1 = await cli(admin, ['backup', 'request', 'approve', esc.obj.request.id]);
      expect(a1.code, a1.stderr).toBe(0);
      expect(a1.obj.request).toMatchObject({ state: 'applied', decidedBy: `user:${admin.id}` });
      expect(await escrows()).toEqual([gpg.fingerprint]);
      const a2 = await cli(admin, ['backup', 'request', 'approve', tgt.obj.request.id]);
      expect(a2.code, a2.stderr).toBe(0);
      expect(await targets()).toEqual(['lyon']);
      const row = await db()
        .selectFrom('backup_targets')
        .selectAll()
        .where('name', '=', 'lyon')
        .executeTakeFirstOrThrow();
      expect({
        url: row.url,
        jurisdiction: row.jurisdiction,
        lat: row.lat,
        lon: row.lon,
        created_by: row.created_by,
      }).toEqual({ url: `file://${loot}`, jurisdiction: 'FR', lat: 45.764, lon: 4.8357, created_by: `user:${op.id}` });
      // approved twice: refused
      const again = await cli(admin2, ['backup', 'request', 'approve', tgt.obj.request.id]);
      expect(again.code).toBe(1);
      expect(again.obj.error?.code ?? again.stderr).toMatch(/REQUEST_NOT_PENDING/);

      // in human output: the request, and that it waits for an admin; exit 0
      const rm = await runCli(['backup', 'target', 'remove', 'lyon'], {
        env: {
          COFFRE_URL: `https://127.0.0.1:${e.port}`,
          COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
          COFFRE_TOKEN: op.token,
          COFFRE_DATA_DIR: '',
        },
      });
      expect(rm.code, rm.stderr).toBe(0);
      expect(rm.stdout).toMatch(/^request [0-9a-f]{16}: remove target lyon .*\npending approval by an admin/);
      expect(await targets()).toEqual(['lyon']);

      // each step audited: asked by the operator, approved and applied by the admin, the change as the operator
      const steps = await trail('backup.request.');
      expect(steps.filter((s) => s.outcome === 'success').map((s) => s.action)).toEqual([
        'backup.request.create',
        'backup.request.create',
        'backup.request.approve',
        'backup.request.apply',
        'backup.request.approve',
        'backup.request.apply',
        'backup.request.create',
      ]);
      expect(steps.filter((s) => s.outcome === 'denied').map((s) => s.reason)).toEqual(
        expect.arrayContaining(['REQUEST_DIGEST_MISMATCH', 'REQUEST_NOT_PENDING']),
      );
    } finally {
      gpg.close();
      fs.rmSync(loot, { recursive: true, force: true });
    }
  });

  it('a change cannot be swapped between request and approval; the requester never decides their own request, even as an admin', async () => {
    const a = path.join(dirs, 'a');
    const b = path.join(dirs, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    const r = await cli(op, [
      'backup',
      'target',
      'add',
      'nimes',
      '--type',
      'path',
      '--url',
      `file://${a}`,
      '--jurisdiction',
      'FR',
      '--lat',
      '43.8367',
      '--lon',
      '4.3601',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.obj.request.id as string;
    const seen = r.obj.request.digest as string;

    // someone with write access to the database swaps the target (and its digest) after the admin reviewed it
    const stored = await db()
      .selectFrom('backup_change_requests')
      .select(['payload', 'digest'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const swapped = JSON.parse(stored.payload) as Change & { kind: 'target.add' };
    swapped.target.url = `file://${b}`;
    await db()
      .updateTable('backup_change_requests')
      .set({ payload: JSON.stringify(swapped) })
      .where('id', '=', id)
      .execute();
    const p1 = await e.req('POST', `/api/v1/backup/requests/${id}/approve`, {
      token: admin.token,
      json: { digest: seen },
    });
    expect(p1.status).toBe(409);
    expect(p1.json().error.code).toBe('REQUEST_DIGEST_MISMATCH');
    await db()
      .updateTable('backup_change_requests')
      .set({ digest: changeDigest(swapped) })
      .where('id', '=', id)
      .execute();
    const p2 = await e.req('POST', `/api/v1/backup/requests/${id}/approve`, {
      token: admin.token,
      json: { digest: seen },
    });
    expect(p2.status).toBe(409);
    expect(await targets()).not.toContain('nimes');
    expect(fs.readdirSync(b)).toEqual([]);
    expect(fs.readdirSync(a)).toEqual([]);
    await db()
      .updateTable('backup_change_requests')
      .set({ payload: stored.payload, digest: stored.digest })
      .where('id', '=', id)
      .execute();

    // an admin who asked for a change (through the service: no admin token may ask) cannot approve it
    const svc = e.t.appliance.backup;
    const own = await svc.requestChange(
      { kind: 'target.remove', name: 'lyon' },
      { actor: `token:x`, person: `user:${admin.id}` },
    );
    await expect(
      svc.approveRequest(own.id, own.digest, { actor: `user:${admin.id}`, person: `user:${admin.id}` }),
    ).rejects.toMatchObject({ code: 'REQUEST_SELF_APPROVAL' });
    // an admin rejects it: nothing changes, and it cannot be approved afterwards
    const rej = await cli(admin2, ['backup', 'request', 'reject', own.id, '--reason', 'not planned']);
    expect(rej.code, rej.stderr).toBe(0);
    expect(rej.obj.request).toMatchObject({ state: 'rejected', reason: 'not planned' });
    expect(await targets()).toContain('lyon');

    // expiry: 72 hours later the nimes request cannot be approved and is no longer listed as pending
    e.clock.advance(73 * 3_600_000);
    const late = await e.req('POST', `/api/v1/backup/requests/${id}/approve`, {
      token: admin.token,
      json: { digest: seen },
    });
    expect(late.status).toBe(409);
    expect(late.json().error.code).toBe('REQUEST_EXPIRED');
    const pending = await cli(admin, ['backup', 'request', 'list']);
    expect(pending.obj.requests).toEqual([]);
    const all = await cli(admin, ['backup', 'request', 'list', '--all']);
    expect(all.obj.requests.find((x: { id: string }) => x.id === id).state).toBe('expired');
    expect(await targets()).not.toContain('nimes');
  });

  it('locally (data directory and HSM PIN) a change applies at once and raises an alert; a decision needs an admin token', async () => {
    const c = path.join(dirs, 'c');
    fs.mkdirSync(c);
    const local = await runCli(
      [
        'backup',
        'target',
        'add',
        'arles',
        '--type',
        'path',
        '--url',
        `file://${c}`,
        '--jurisdiction',
        'FR',
        '--lat',
        '43.6768',
        '--lon',
        '4.6303',
        '--data-dir',
        e.t.dataDir,
        '--json',
      ],
      { env: { ...FAST, ...NO_MFA, COFFRE_URL: '' } },
    );
    expect(local.code, local.stderr).toBe(0);
    expect(await targets()).toContain('arles');
    const alert = await db()
      .selectFrom('alerts')
      .select(['kind', 'message'])
      .where('kind', '=', 'backup.change-local')
      .executeTakeFirst();
    expect(alert?.message).toMatch(/added target arles/);
    const approve = await runCli(['backup', 'request', 'approve', '0123456789abcdef', '--data-dir', e.t.dataDir], {
      env: { COFFRE_URL: '' },
    });
    expect(approve.code).toBe(2);
    expect(approve.stderr).toMatch(/^USAGE: .*admin/m);
  });
});
