import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atTarget, LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { canonicalJson } from '../../src/backup/format.js';
import { MARKER_MAC_KEY } from '../../src/backup/marker.js';

/**
 * Who owns a target directory: one directory is one target (the same URL, a symbolic link to it,
 * or its marker are recognised), and the marker is MACed in the HSM, so whoever can write the
 * directory cannot stop backups with a forged claim, and the alert says whether a claim was
 * forged or genuine. Mounted path targets; a real SoftHSM2 token.
 */
let e: BackupEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-owner-'));
const dirA = path.join(tmp, 'a');
beforeAll(async () => {
  e = await openBackupEnv();
  await e.upload('statutes.pdf', randomDoc(200_000));
  fs.mkdirSync(dirA);
});
afterAll(async () => {
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const add = (name: string, dir: string) =>
  e.service.addTarget({ name, type: 'path', url: `file://${dir}`, ...LYON }, 'local:test');
const marker = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, '.coffre-target'), 'utf8')) as Record<string, string>;
/** the open alert of that kind about that target (a repeat keeps the first message: resolved once read) */
const takeAlert = async (kind: string, target: string) => {
  const a = await e.env.t.appliance.db.db
    .selectFrom('alerts')
    .select('message')
    .where('kind', '=', kind)
    .where('state', '=', 'open')
    .where('targets', '=', JSON.stringify({ target }))
    .executeTakeFirst();
  await e.env.t.appliance.alerts.clear?.({ kind, targets: { target } });
  return a?.message;
};

describe('one directory, one target', { timeout: 180_000 }, () => {
  it('refuses the same URL, a symbolic link to it, and a directory whose marker names a registered target; removing the first still works', async () => {
    await add('a', dirA);
    expect(marker(dirA)).toMatchObject({
      applianceId: e.env.t.appliance.config.applianceId,
      target: 'a',
      mac: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    await expect(add('b', dirA)).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(/already registered as target a/),
    });
    const link = path.join(tmp, 'link-to-a');
    fs.symlinkSync(dirA, link);
    await expect(add('c', link)).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(/already registered as target a/),
    });
    // the same directory reached another way (a bind mount, an SFTP account on the same disk): its marker tells
    const bind = path.join(tmp, 'bind');
    fs.mkdirSync(bind);
    fs.copyFileSync(path.join(dirA, '.coffre-target'), path.join(bind, '.coffre-target'));
    await expect(add('d', bind)).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(/already registered as target a \(its marker says so\)/),
    });
    expect((await e.service.listTargets()).map((t) => t.name)).toEqual(['a']);
    const denied = await e.env.t.appliance.db.db
      .selectFrom('audit_events')
      .select('reason')
      .where('action', '=', 'backup.target.add')
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.map((d) => d.reason)).toEqual(['TARGET_DUPLICATE', 'TARGET_DUPLICATE', 'TARGET_DUPLICATE']);
    expect((await e.service.run({ actor: 'job:backup' })).ok).toBe(true);
  });
});

describe('the marker is MACed in the HSM', { timeout: 180_000 }, () => {
  it('a forged claim of another appliance does not stop backups: the alert says forged, the marker is written again', async () => {
    const held = atTarget(dirA).complete;
    expect(held).toHaveLength(1);
    const forged = {
      format: 'coffre-backup/1',
      applianceId: 'someone-elses-appliance',
      target: 'dr',
      createdAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(dirA, '.coffre-target'), JSON.stringify(forged));
    const r = await e.service.run({ actor: 'job:backup' });
    expect(r.ok).toBe(true);
    expect(await takeAlert('backup.marker-forged', 'a')).toMatch(
      /is claimed by appliance someone-elses-appliance; the claim is not MACed by this appliance's HSM .*holds this appliance's backups .*written again/,
    );
    expect(marker(dirA)).toMatchObject({ applianceId: e.env.t.appliance.config.applianceId, target: 'a' });
    // a marker naming this appliance with a made-up MAC is called forged outright
    fs.writeFileSync(path.join(dirA, '.coffre-target'), JSON.stringify({ ...marker(dirA), mac: 'ab'.repeat(32) }));
    expect((await e.service.run({ actor: 'job:backup' })).ok).toBe(true);
    expect(await takeAlert('backup.marker-forged', 'a')).toMatch(
      /^FORGED marker at .*: it names appliance \S+ but its MAC does not verify under this appliance's HSM/,
    );
  });

  it('at registration: a forged marker is refused as forged (alerted), a genuine claim of another appliance on the same HSM as a claim', async () => {
    const keys = e.env.t.appliance.keys.provider;
    const forgedDir = path.join(tmp, 'forged');
    fs.mkdirSync(forgedDir);
    fs.writeFileSync(
      path.join(forgedDir, '.coffre-target'),
      JSON.stringify({
        format: 'coffre-backup/1',
        applianceId: e.env.t.appliance.config.applianceId,
        target: 'x',
        createdAt: new Date().toISOString(),
        mac: '00'.repeat(32),
      }),
    );
    await expect(add('forged', forgedDir)).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(/^FORGED marker/),
    });
    expect(await takeAlert('backup.marker-forged', 'forged')).toMatch(
      /FORGED marker .*the target forged was not registered/,
    );
    // another appliance sharing this HSM partition (a DR pair) MACs its claim with the same HSM key
    const claimedDir = path.join(tmp, 'claimed');
    fs.mkdirSync(claimedDir);
    const body = {
      format: 'coffre-backup/1',
      applianceId: 'sister-appliance',
      target: 'dr',
      createdAt: new Date().toISOString(),
    };
    const mac = await keys.mac(MARKER_MAC_KEY, Buffer.from(canonicalJson(body)), { create: false }); // made when target a was registered
    fs.writeFileSync(path.join(claimedDir, '.coffre-target'), JSON.stringify({ ...body, mac: mac.toString('hex') }));
    await expect(add('claimed', claimedDir)).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      message: expect.stringMatching(
        /belongs to appliance sister-appliance \(a genuine claim: its MAC verifies under this HSM\)/,
      ),
    });
    expect((await e.service.listTargets()).map((t) => t.name)).toEqual(['a']);
  });

  it('removing the target deletes its backups and its marker', async () => {
    const r = await e.service.removeTarget('a', 'local:test');
    expect(r.deleted.length).toBeGreaterThan(0);
    expect(fs.readdirSync(dirA)).toEqual([]);
  });
});
