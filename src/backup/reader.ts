import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { KeyProvider } from '../keys/types.js';
import { unpackArchive } from './archive.js';
import { backupErrors } from './errors.js';
import {
  canonicalJson,
  checkManifest,
  parseSidecar,
  sessionKeyInput,
  SIDECAR,
  SIDECAR_MAC_KEY,
  sidecarMacInput,
  wrappedFromJson,
  type Manifest,
  type Sidecar,
} from './format.js';
import { isAppError } from '../shared/errors.js';
import { downloadParts } from './parts.js';
import { PartPool } from './pgp/pool.js';
import type { BackupTarget } from './targets/types.js';

/**
 * Reads a backup back from its target: the sidecar (shape, HSM MAC, appliance), the session key
 * (unwrapped by the HSM), then every part (size and SHA-256 against the sidecar, decrypted and
 * authenticated one by one) into the tar reader, and finally the manifest against every member
 * read. Used by verify, the restore drill and restore. Nothing read is trusted before its check.
 */
export async function readSidecar(
  target: BackupTarget,
  dir: string,
  label: string,
): Promise<{ sidecar: Sidecar; raw: Buffer }> {
  const raw = await buffer(await target.get(`${dir}/${SIDECAR}`));
  if (raw.length > 64 * 1024 * 1024) throw backupErrors.integrity(`${label}: sidecar too large`);
  return { sidecar: parseSidecar(raw.toString('utf8'), label), raw };
}

export async function openSidecar(
  keys: KeyProvider,
  sidecar: Sidecar,
  expect: { backupId: string; applianceId?: string },
  label: string,
): Promise<Buffer> {
  if (sidecar.backupId !== expect.backupId)
    throw backupErrors.integrity(`${label}: the sidecar is for backup ${sidecar.backupId}`);
  if (expect.applianceId && sidecar.applianceId !== expect.applianceId)
    throw backupErrors.integrity(`${label}: the backup belongs to appliance ${sidecar.applianceId}`);
  const { mac, ...rest } = sidecar;
  const ok = await keys.verifyMac(SIDECAR_MAC_KEY, sidecarMacInput(rest), Buffer.from(mac, 'hex'));
  if (!ok)
    throw backupErrors.integrity(`${label}: the sidecar's HSM MAC does not verify (altered, or made by another HSM)`);
  const key = await sessionKey(keys, sidecar, label);
  if (key.length !== 32) throw backupErrors.integrity(`${label}: the unwrapped session key has ${key.length} bytes`);
  return key;
}

/** The session key: derived under the backup's own HSM key (format 2), or unwrapped by the KEK (format 1). */
async function sessionKey(keys: KeyProvider, sidecar: Sidecar, label: string): Promise<Buffer> {
  if (sidecar.sessionKey) {
    try {
      return await keys.mac(sidecar.sessionKey.keyName, sessionKeyInput(sidecar.backupId, sidecar.sessionKey.nonce), {
        create: false,
      });
    } catch (e) {
      if (isAppError(e) && e.code === 'KEY_DESTROYED') throw backupErrors.destroyed(label);
      throw e;
    }
  }
  return keys.unwrap(wrappedFromJson(sidecar.wrappedKey!));
}

/** What the catalogue keeps of a backup's key (`backups.wrapped_key`): the sidecar's key reference, as JSON. */
export const keyRefOf = (sidecar: Pick<Sidecar, 'sessionKey' | 'wrappedKey'>): string =>
  canonicalJson(sidecar.sessionKey ?? sidecar.wrappedKey);

export type MemberSink = (name: string, size: number, stream: Readable) => Promise<void>;

/** Drains a member (only its hash matters). */
export const discard: MemberSink = async (_n, _s, stream) => {
  for await (const _ of stream) void _;
};

/** Writes a member to a file (0600), fsynced. */
export async function toFile(stream: Readable, file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'wx', 0o600);
  try {
    for await (const c of stream as AsyncIterable<Buffer>) await fh.writeFile(c);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readArchive(o: {
  target: BackupTarget;
  dir: string;
  sidecar: Sidecar;
  key: Uint8Array;
  label: string;
  onMember: MemberSink;
  onCipherBytes?: (n: number) => void;
  /** decryption worker threads (0: the calling thread) */
  threads?: number;
  /** a pool already holding this backup's key (the run that wrote it): used, not closed */
  pool?: PartPool;
}): Promise<Manifest> {
  let plain = 0;
  const pool = o.pool ?? new PartPool(Buffer.from(o.key), new Uint8Array(0), 0, o.threads ?? 2);
  try {
    const parts = downloadParts({
      target: o.target,
      dir: o.dir,
      parts: o.sidecar.parts,
      pool,
      label: o.label,
      ...(o.onCipherBytes ? { onCipherBytes: o.onCipherBytes } : {}),
    });
    async function* counted() {
      for await (const p of parts) {
        plain += p.length;
        yield p;
      }
    }
    const { manifest, seen } = await unpackArchive(counted(), o.onMember, o.label);
    if (plain !== o.sidecar.plainSize)
      throw backupErrors.integrity(`${o.label}: ${plain} plaintext bytes, the sidecar records ${o.sidecar.plainSize}`);
    checkManifest(manifest, seen, { backupId: o.sidecar.backupId, applianceId: o.sidecar.applianceId }, o.label);
    return manifest;
  } finally {
    if (pool !== o.pool) await pool.close();
  }
}

/** A sink that writes chosen members to files and drains the rest. */
export function sinkTo(files: Record<string, string>): MemberSink {
  return async (name, size, stream) => {
    const f = files[name];
    if (f) await toFile(stream, f);
    else await discard(name, size, stream);
  };
}
