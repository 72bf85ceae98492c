import type { Selectable } from 'kysely';
import type { AuditTables } from './tables.js';

/** Format of checkpoints (docs/formats.md "Audit checkpoints"). */
export const CHECKPOINT_VERSION = 'coffre-audit-checkpoint/1';
/** name of the HSM HMAC key (non-extractable, created on first use by KeyProvider.mac) */
export const CHECKPOINT_KEY = 'coffre-audit-checkpoint';

export type CheckpointKind = 'periodic' | 'stop' | 'pruned' | 'manual';

/** A checkpoint as stored and exported: the head (seq, hash) at a time, MACed inside the HSM. */
export interface Checkpoint {
  applianceId: string;
  kind: CheckpointKind;
  seq: number;
  hash: string;
  /** ms since the epoch, UTC */
  at: number;
  keyName: string;
  /** lowercase hex HMAC-SHA256 over checkpointEncoding() */
  mac: string;
  /** base64 DER ECDSA signature of the sealing key over checkpointEncoding(), when it was signed */
  signature?: string;
}

/** What the HSM MACs: the JCS serialisation of a fixed-order array (see docs/formats.md). */
export function checkpointEncoding(c: Omit<Checkpoint, 'mac' | 'keyName'>): Buffer {
  return Buffer.from(
    JSON.stringify([CHECKPOINT_VERSION, c.applianceId, c.kind, c.seq, c.hash, new Date(c.at).toISOString()]),
    'utf8',
  );
}

export function rowToCheckpoint(r: Selectable<AuditTables['audit_checkpoints']>, applianceId: string): Checkpoint {
  return {
    applianceId,
    kind: r.kind as CheckpointKind,
    seq: Number(r.seq),
    hash: r.hash,
    at: Number(r.at),
    keyName: r.key_name,
    mac: r.mac,
    ...(r.signature ? { signature: r.signature } : {}),
  };
}

/** The exported form (one JSON object; also a line of the JSON-lines export and a syslog message). */
export function exportCheckpoint(c: Checkpoint): Record<string, unknown> {
  return {
    type: 'coffre.audit.checkpoint',
    version: CHECKPOINT_VERSION,
    applianceId: c.applianceId,
    kind: c.kind,
    seq: c.seq,
    hash: c.hash,
    at: new Date(c.at).toISOString(),
    keyName: c.keyName,
    mac: c.mac,
    ...(c.signature ? { signature: c.signature } : {}),
  };
}

/** Parses an exported checkpoint (from the SIEM or a backup); undefined when it is not one. */
export function parseExportedCheckpoint(o: unknown): Checkpoint | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const x = o as Record<string, unknown>;
  if (x.type !== 'coffre.audit.checkpoint' || x.version !== CHECKPOINT_VERSION) return undefined;
  const at = typeof x.at === 'string' ? Date.parse(x.at) : NaN;
  if (
    typeof x.applianceId !== 'string' ||
    !['periodic', 'stop', 'pruned', 'manual'].includes(x.kind as string) ||
    !Number.isSafeInteger(x.seq) ||
    typeof x.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(x.hash) ||
    !Number.isFinite(at) ||
    typeof x.keyName !== 'string' ||
    typeof x.mac !== 'string' ||
    !/^[0-9a-f]+$/.test(x.mac)
  ) {
    return undefined;
  }
  return {
    applianceId: x.applianceId,
    kind: x.kind as CheckpointKind,
    seq: x.seq as number,
    hash: x.hash,
    at,
    keyName: x.keyName,
    mac: x.mac,
  };
}
