import fs from 'node:fs';
import path from 'node:path';
import { getTarget, insertTarget, listBackups, listTargets, type TargetInfo } from './catalogue.js';
import type { BackupCore } from './core.js';
import { backupErrors } from './errors.js';
import { isBackupId, MARKER } from './format.js';
import { describeMarker, markerRefused, newMarker, readMarker, writeMarker } from './marker.js';
import { siteProblems } from './geo.js';
import { normaliseTargetUrl, pathFromFileUrl } from './registry.js';
import { adopt, cleanTemp, destroy, removeUnmanaged } from './shred.js';
import { parseHostKey, probeHostKey } from './targets/sftp.js';
import type { BackupTarget, TargetType } from './targets/types.js';
import type { AddTargetInput } from './types.js';

/** Registering and removing targets, and the marker that ties a target directory to this appliance. */

const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Registers a target. Refused (exit 2, nothing stored) when its declared site breaks the policy,
 * its URL is malformed, an SFTP target has no pinned host key, or its directory belongs to
 * another appliance. The target is reached once: authentication, the host key, and the
 * directory's marker are checked before the row is written.
 */
export async function addTarget(
  c: BackupCore,
  i: AddTargetInput,
  actor: string,
): Promise<TargetInfo & { distanceKm: number }> {
  const { info, distanceKm } = await checkNewTarget(c, i, actor);
  // reached once, without retries: an unreachable target is reported at once, with its cause
  const t = c.open(info, undefined, 0);
  try {
    await claim(c, t, i.name, actor);
  } finally {
    await t.close();
  }
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: 'backup.target.add',
      actor,
      outcome: 'success',
      targets: { target: i.name },
    });
    await insertTarget(trx, info);
  });
  return { ...info, distanceKm };
}

/**
 * The checks of `addTarget` that do not write to the target: name, declared site, URL, host key,
 * credentials, a name or location already registered. Refusals are audited. Returns the target
 * as it would be stored (a change request records exactly this, ./requests.ts).
 */
export async function checkNewTarget(
  c: BackupCore,
  i: AddTargetInput,
  actor: string,
): Promise<{ info: TargetInfo; distanceKm: number }> {
  if (!TARGET_NAME.test(i.name))
    throw backupErrors.usage(
      `target name ${JSON.stringify(i.name)} must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)`,
    );
  const site = { jurisdiction: i.jurisdiction.toUpperCase(), lat: i.lat, lon: i.lon };
  const sp = siteProblems(site);
  if (sp.length) throw backupErrors.usage(`target site: ${sp.join('; ')}`);
  const verdict = c.geoCheck(site);
  if (!verdict.ok) {
    await c.d.audit.recordNow({
      action: 'backup.target.add',
      actor,
      outcome: 'denied',
      reason: 'SITE_POLICY',
      targets: { target: i.name },
    });
    throw backupErrors.refused(
      `target ${i.name} refused: ${verdict.problems.join('; ')}`,
      'declare a target in the same jurisdiction and far enough away (backup.minDistanceKm, backup.allowedJurisdictions)',
    );
  }
  if (await getTarget(c.db, i.name))
    throw backupErrors.usage(`a target named ${i.name} exists`, 'remove it first or choose another name');
  const url = normaliseTargetUrl(i.type, i.url);
  let hostKey: string | null = null;
  if (i.type === 'sftp') {
    if (!i.hostKey) {
      const presented = await probeHostKey(url, c.cfg.connectTimeoutMs).catch(() => null);
      throw backupErrors.usage(
        'an SFTP target needs --host-key: the server key is pinned, never trusted on first use',
        presented
          ? `the server at ${url} presents ${presented}; check it out of band (ssh-keygen -lf on the target) and pass --host-key ${presented}`
          : 'get it at the target with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`',
      );
    }
    hostKey = parseHostKey(i.hostKey);
    if (!i.identityFile && !i.passwordFile)
      throw backupErrors.usage('an SFTP target needs --identity FILE (a private key) or a password file');
  } else if (i.type === 's3') {
    if (!i.passwordFile) throw backupErrors.usage('an S3 target needs --password-file: its secret access key');
    if (i.hostKey || i.identityFile) throw backupErrors.usage('--host-key and --identity are for SFTP targets only');
  } else if (i.hostKey || i.identityFile || i.passwordFile) {
    throw backupErrors.usage('--host-key and --identity are for SFTP targets only');
  }
  const info: TargetInfo = {
    name: i.name,
    type: i.type,
    url,
    jurisdiction: site.jurisdiction,
    lat: site.lat,
    lon: site.lon,
    hostKey,
    identityFile: i.identityFile ? path.resolve(i.identityFile) : null,
    passwordFile: i.passwordFile ? path.resolve(i.passwordFile) : null,
    createdAt: c.d.clock.nowMs(),
    createdBy: actor,
  };
  const here = canonicalLocation(i.type, url);
  const same = (await listTargets(c.db)).find((x) => x.url === url || canonicalLocation(x.type, x.url) === here);
  if (same) {
    await c.d.audit.recordNow({
      action: 'backup.target.add',
      actor,
      outcome: 'denied',
      reason: 'TARGET_DUPLICATE',
      targets: { target: i.name },
    });
    throw backupErrors.refused(
      `${url} is already registered as target ${same.name}`,
      'one directory holds one target; use the existing target, or another directory',
    );
  }
  return { info, distanceKm: verdict.distanceKm };
}

/**
 * Writes the HSM-MACed marker that ties a target directory to this appliance, or checks the one
 * there: refused when the directory is already registered here under another name (the same
 * marker), claimed by another appliance, or holds a forged marker (alerted).
 */
async function claim(c: BackupCore, t: BackupTarget, name: string, actor: string): Promise<void> {
  const applianceId = c.d.config.applianceId;
  const v = await readMarker(t, c.d.keys, applianceId);
  if (v.kind === 'ours') {
    const other = v.marker.target !== name ? await getTarget(c.db, v.marker.target) : undefined;
    if (other) {
      await c.d.audit.recordNow({
        action: 'backup.target.add',
        actor,
        outcome: 'denied',
        reason: 'TARGET_DUPLICATE',
        targets: { target: name },
      });
      throw backupErrors.refused(
        `${t.display} is already registered as target ${other.name} (its marker says so)`,
        'one directory holds one target; use the existing target, or another directory',
      );
    }
  } else if (v.kind !== 'missing') {
    if (v.kind === 'forged')
      await c.alert({
        kind: 'backup.marker-forged',
        severity: 'critical',
        message: `${describeMarker(v, t.display)}; the target ${name} was not registered`,
        targets: { target: name },
      });
    await c.d.audit.recordNow({
      action: 'backup.target.add',
      actor,
      outcome: 'denied',
      reason: v.kind === 'forged' ? 'MARKER_FORGED' : 'TARGET_CLAIMED',
      targets: { target: name },
    });
    throw markerRefused(v, t.display);
  }
  // a new directory, or one of this appliance's whose target is no longer registered (a restored appliance): claimed under this name
  const bytes = await newMarker(c.d.keys, { applianceId, target: name, createdAt: new Date(c.now()).toISOString() });
  if (v.kind === 'missing') await t.put(MARKER, bytes);
  else await writeMarker(t, bytes);
}

/** The location a URL reaches, for telling one directory registered twice: symbolic links resolved for a mounted path. */
function canonicalLocation(type: TargetType, url: string): string {
  if (type !== 'path') return url;
  const dir = pathFromFileUrl(url);
  try {
    return `file://${fs.realpathSync(dir)}`;
  } catch {
    return url;
  }
}

/**
 * Removes a target after destroying every backup of this appliance at it (keys shredded, files
 * deleted, deletion checked): data is never left where Coffre no longer manages it.
 */
export async function removeTarget(c: BackupCore, name: string, actor: string): Promise<{ deleted: string[] }> {
  const info = await getTarget(c.db, name);
  if (!info) throw backupErrors.usage(`no target named ${name}`, 'see `coffre backup target list`');
  return c.withLock(false, async () => {
    const t = c.open(info);
    const deleted: string[] = [];
    try {
      await c.checkMarker(t, name);
      deleted.push(...(await adopt(c, t, info.name, actor)));
      for (const b of await listBackups(c.db, { target: name })) {
        await destroy(c, t, info.name, b.id, 'target-removed', actor);
        deleted.push(b.id);
      }
      await cleanTemp(c, t, name, actor);
      // what is left in this appliance's directory (a backup that could not be adopted) goes too
      for (const e of await t.list('')) {
        if (e.type === 'dir' && isBackupId(e.name)) {
          await removeUnmanaged(c, t, name, e.name, actor);
          deleted.push(e.name);
        }
      }
      await t.remove(MARKER);
    } finally {
      await t.close();
    }
    await c.db.transaction().execute(async (trx) => {
      await c.d.audit.record(trx, {
        action: 'backup.target.remove',
        actor,
        outcome: 'success',
        targets: { target: name },
      });
      await trx.deleteFrom('backup_targets').where('name', '=', name).execute();
    });
    return { deleted };
  });
}
