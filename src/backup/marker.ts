import { macCreating } from '../keys/index.js';
import type { KeyProvider } from '../keys/types.js';
import { isAppError } from '../shared/errors.js';
import { backupErrors } from './errors.js';
import { canonicalJson, FORMAT, MARKER } from './format.js';
import type { BackupTarget } from './targets/types.js';
import { streamText } from './types.js';

/**
 * The ownership marker `.coffre-target` (docs/formats.md "Backups"): which appliance, and under
 * which target name, a directory holds backups for. Since format 2 it carries an HMAC computed in
 * the HSM (key MARKER_MAC_KEY) over its other fields, so a claim made by this appliance's HSM is
 * told apart from a forgery by whoever can write the directory.
 */
export const MARKER_MAC_KEY = 'coffre-backup-marker';

export interface Marker {
  format: string;
  applianceId: string;
  target: string;
  createdAt: string;
  /** hex HMAC-SHA256 by the HSM over the canonical JSON of the other fields (absent in markers written before it existed) */
  mac?: string;
}

/**
 * What a marker is, as this appliance can tell:
 * - `ours`: MACed by this HSM for this appliance (or an unMACed marker of this appliance written
 *   before markers were MACed: it claims nothing for anyone else);
 * - `claim`: MACed by this HSM for another appliance (one sharing this HSM partition): a real claim;
 * - `forged`: names this appliance without a valid MAC, or carries a MAC this HSM does not verify
 *   for the appliance it names;
 * - `foreign`: names another appliance and is not MACed by this HSM: its claim cannot be checked
 *   here (another HSM) — a real claim elsewhere, or a forgery;
 * - `missing`: no marker (wrong directory, or an unmounted volume).
 */
export type MarkerVerdict =
  | { kind: 'ours'; marker: Marker }
  | { kind: 'claim' | 'forged' | 'foreign'; marker: Partial<Marker> }
  | { kind: 'missing' };

const macInput = (m: Omit<Marker, 'mac'>) => Buffer.from(canonicalJson({ ...m, mac: undefined }), 'utf8');

export async function newMarker(keys: KeyProvider, m: Omit<Marker, 'mac' | 'format'>): Promise<Buffer> {
  const body = { format: FORMAT, ...m };
  const mac = await macCreating(keys, MARKER_MAC_KEY, macInput(body));
  return Buffer.from(JSON.stringify({ ...body, mac: mac.toString('hex') }) + '\n');
}

export async function readMarker(t: BackupTarget, keys: KeyProvider, applianceId: string): Promise<MarkerVerdict> {
  let text: string;
  try {
    text = await streamText(await t.get(MARKER));
  } catch (e) {
    if (isAppError(e) && e.code === 'TARGET_NOT_FOUND') return { kind: 'missing' };
    throw e;
  }
  let m: Partial<Marker>;
  try {
    m = JSON.parse(text) as Partial<Marker>;
    if (!m || typeof m !== 'object') throw new Error('not an object');
  } catch {
    return { kind: 'forged', marker: {} };
  }
  const mine = m.applianceId === applianceId;
  if (typeof m.mac !== 'string')
    return mine && typeof m.target === 'string'
      ? { kind: 'ours', marker: m as Marker }
      : { kind: mine ? 'forged' : 'foreign', marker: m };
  const { mac, ...rest } = m;
  const ok =
    /^[0-9a-f]{64}$/.test(mac) &&
    (await keys.verifyMac(MARKER_MAC_KEY, macInput(rest as Omit<Marker, 'mac'>), Buffer.from(mac, 'hex')));
  if (ok) return mine ? { kind: 'ours', marker: m as Marker } : { kind: 'claim', marker: m };
  return { kind: mine ? 'forged' : 'foreign', marker: m };
}

/** Replaces a marker (not atomic: a crash in between leaves none, and runs refuse until it is written again). */
export async function writeMarker(t: BackupTarget, bytes: Buffer): Promise<void> {
  await t.remove(MARKER);
  await t.put(MARKER, bytes);
}

/** One line for messages and alerts: what the marker claims, and whether that claim is genuine. */
export function describeMarker(v: Exclude<MarkerVerdict, { kind: 'missing' }>, display: string): string {
  const who = v.marker.applianceId ? `appliance ${v.marker.applianceId}` : 'no appliance';
  switch (v.kind) {
    case 'ours':
      return `${display} is marked as target ${v.marker.target} of this appliance`;
    case 'claim':
      return `${display} belongs to ${who} (a genuine claim: its MAC verifies under this HSM)`;
    case 'forged':
      return `FORGED marker at ${display}: it names ${who} but its MAC does not verify under this appliance's HSM`;
    case 'foreign':
      return `${display} is claimed by ${who}; the claim is not MACed by this appliance's HSM (another appliance with its own HSM, or a forgery)`;
  }
}

/** A marker that cannot be trusted for a target: refused (exit 2), saying which case it is. */
export const markerRefused = (v: Exclude<MarkerVerdict, { kind: 'missing' | 'ours' }>, display: string) =>
  backupErrors.refused(
    describeMarker(v, display),
    v.kind === 'forged'
      ? 'someone with write access to the target directory altered the marker: investigate; Coffre never writes an unMACed marker'
      : 'give each appliance its own directory',
  );
