import crypto from 'node:crypto';
import type { WrappedKey } from '../keys/types.js';
import { backupErrors } from './errors.js';

/**
 * The backup format, version 1 (docs/formats.md "Backups"). At the target:
 *
 *   <root>/.coffre-target                 marker: which appliance owns this directory
 *   <root>/<id>/part-000000.pgp …         the archive, cut into parts, each an OpenPGP message
 *   <root>/<id>/sidecar.json              the HSM-wrapped session key, part list, HSM MAC
 *   <root>/.tmp-<id>/…                    a backup being written (never looks complete)
 *
 * Inside (the concatenated decrypted parts): a POSIX tar stream of `db/coffre.db` (VACUUM INTO),
 * `config/config.json`, `audit/checkpoints.json`, `blobs/<id>`…, and `manifest.json` last.
 */
export const FORMAT = 'coffre-backup/1';
/**
 * Sidecar format 2: the session key is not wrapped under the KEK any more but derived in the HSM
 * under a key object of its own (`sessionKey`), destroyed with the backup: a copy of the target
 * then holds nothing that any HSM can turn back into the key. Format 1 sidecars (`wrappedKey`)
 * are still read.
 */
export const SIDECAR_FORMAT = 'coffre-backup/2';
export const SESSION_KEY_SCHEME = 'hsm-hmac-sha256-per-backup';
/** name of the backup's own HSM key (the provider prefixes its KEK label) */
export const sessionKeyName = (backupId: string): string => `backup-${backupId.toLowerCase()}`;
/** what the backup's HSM key MACs to give the 32-byte session key */
export const sessionKeyInput = (backupId: string, nonce: string): Buffer =>
  Buffer.from(`coffre-backup-session-key/1\0${backupId}\0${nonce}`, 'utf8');
export const MARKER = '.coffre-target';
export const SIDECAR = 'sidecar.json';
export const MANIFEST = 'manifest.json';
export const DB_MEMBER = 'db/coffre.db';
export const CONFIG_MEMBER = 'config/config.json';
export const AUDIT_MEMBER = 'audit/checkpoints.json';
export const BLOB_PREFIX = 'blobs/';
export const TMP_PREFIX = '.tmp-';
/** name of the HSM HMAC key that authenticates sidecars */
export const SIDECAR_MAC_KEY = 'coffre-backup-sidecar';

const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([0-9a-f]{6})$/;

/** `20261102T023000Z-1a2b3c`: sorts by time, tells its creation time without a read. */
export function newBackupId(atMs: number): string {
  const d = new Date(atMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return `${d}-${crypto.randomBytes(3).toString('hex')}`;
}

export const isBackupId = (s: string): boolean => ID.test(s);

export function backupIdTime(id: string): number {
  const m = ID.exec(id);
  if (!m)
    throw backupErrors.usage(
      `not a backup id: ${JSON.stringify(id)}`,
      'ids look like 20261102T023000Z-1a2b3c; see `coffre backup list`',
    );
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

export const partName = (i: number) => `part-${String(i).padStart(6, '0')}.pgp`;

export interface ManifestMember {
  name: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof FORMAT;
  backupId: string;
  applianceId: string;
  createdAt: string;
  /** the newest applied migration: the schema of db/coffre.db */
  schemaVersion: string;
  site: { jurisdiction: string; lat: number; lon: number; timeZone: string; name?: string };
  /** rows and blobs in the snapshot: the restore drill compares what it restored with these */
  counts: { documents: number; versions: number; blobs: number };
  members: ManifestMember[];
}

export interface PartRecord {
  name: string;
  /** ciphertext bytes */
  size: number;
  /** SHA-256 of the ciphertext, hex */
  sha256: string;
}

/** Non-secret locator of the HSM that wrapped the session key (from the keys config). */
export interface HsmLocator {
  module: string;
  tokenLabel?: string | undefined;
  slot?: number | undefined;
  kekLabel: string;
}

/** Where a format-2 backup's session key comes from: HMAC-SHA256 in the HSM under key `keyName` of `sessionKeyInput(backupId, nonce)`. */
export interface SessionKeyRef {
  scheme: typeof SESSION_KEY_SCHEME;
  keyName: string;
  /** 32 random bytes, hex */
  nonce: string;
}

export interface Sidecar {
  format: typeof FORMAT | typeof SIDECAR_FORMAT;
  backupId: string;
  applianceId: string;
  createdAt: string;
  /** weekday slot 1 (Mon) .. 7 (Sun), appliance time zone */
  slot: number;
  cipher: 'openpgp-seipdv1-aes256';
  /** format 1: the session key wrapped under the KEK */
  wrappedKey?: { kekLabel: string; kekVersion: number; mechanism: string; wrapped: string };
  /** format 2: the session key derived under the backup's own HSM key */
  sessionKey?: SessionKeyRef;
  hsm: HsmLocator;
  escrow: string[];
  /** plaintext (tar) bytes */
  plainSize: number;
  parts: PartRecord[];
  /** HMAC-SHA256 by the HSM (key SIDECAR_MAC_KEY) over the canonical JSON of every other field */
  mac: string;
}

/** JSON with sorted keys, no spaces: what the sidecar MAC covers. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export const sidecarMacInput = (s: Omit<Sidecar, 'mac'>): Buffer =>
  Buffer.from(canonicalJson({ ...s, mac: undefined }), 'utf8');

export function wrappedToJson(w: WrappedKey): NonNullable<Sidecar['wrappedKey']> {
  return {
    kekLabel: w.kekLabel,
    kekVersion: w.kekVersion,
    mechanism: w.mechanism,
    wrapped: w.wrapped.toString('base64'),
  };
}

export function wrappedFromJson(j: NonNullable<Sidecar['wrappedKey']>): WrappedKey {
  return {
    kekLabel: j.kekLabel,
    kekVersion: j.kekVersion,
    mechanism: j.mechanism,
    wrapped: Buffer.from(j.wrapped, 'base64'),
  };
}

/** Parses a sidecar read from a target (untrusted: shape checked here, MAC by the caller). */
export function parseSidecar(text: string, label: string): Sidecar {
  let s: Sidecar;
  try {
    s = JSON.parse(text) as Sidecar;
  } catch {
    throw backupErrors.integrity(`${label}: sidecar is not JSON`);
  }
  const ok =
    s &&
    typeof s.backupId === 'string' &&
    isBackupId(s.backupId) &&
    typeof s.applianceId === 'string' &&
    Number.isInteger(s.slot) &&
    ((s.format === FORMAT && !!s.wrappedKey && typeof s.wrappedKey.wrapped === 'string') ||
      (s.format === SIDECAR_FORMAT &&
        !!s.sessionKey &&
        s.sessionKey.scheme === SESSION_KEY_SCHEME &&
        s.sessionKey.keyName === sessionKeyName(s.backupId) &&
        typeof s.sessionKey.nonce === 'string' &&
        /^[0-9a-f]{64}$/.test(s.sessionKey.nonce))) &&
    Array.isArray(s.parts) &&
    s.parts.every(
      (p, i) => p && p.name === partName(i) && Number.isSafeInteger(p.size) && /^[0-9a-f]{64}$/.test(p.sha256),
    ) &&
    typeof s.mac === 'string';
  if (!ok) throw backupErrors.integrity(`${label}: sidecar is malformed or of an unknown format`);
  return s;
}

/** Checks a manifest read from the archive against what was read (names, sizes, hashes). */
export function checkManifest(
  m: Manifest,
  seen: ManifestMember[],
  expect: { backupId: string; applianceId: string },
  label: string,
): void {
  if (m.format !== FORMAT) throw backupErrors.integrity(`${label}: manifest of unknown format ${String(m.format)}`);
  if (m.backupId !== expect.backupId || m.applianceId !== expect.applianceId) {
    throw backupErrors.integrity(
      `${label}: the archive is backup ${m.backupId} of appliance ${m.applianceId}, not ${expect.backupId} of ${expect.applianceId}`,
    );
  }
  const want = new Map(m.members.map((x) => [x.name, x]));
  if (want.size !== m.members.length) throw backupErrors.integrity(`${label}: manifest lists a member twice`);
  for (const s of seen) {
    const w = want.get(s.name);
    if (!w) throw backupErrors.integrity(`${label}: member ${s.name} is not in the manifest`);
    if (w.size !== s.size || w.sha256 !== s.sha256)
      throw backupErrors.integrity(`${label}: member ${s.name} does not match its manifest hash`);
    want.delete(s.name);
  }
  if (want.size) throw backupErrors.integrity(`${label}: ${want.size} member(s) missing, e.g. ${[...want.keys()][0]}`);
}
