import crypto from 'node:crypto';
import net from 'node:net';
import type { AuditEvent } from './types.js';
import { auditErrors } from './errors.js';

/**
 * The audit chain's canonical encoding and hash (docs/formats.md "Audit chain"). Changing anything
 * here breaks every existing trail: bump CHAIN_VERSION and keep the old encoder for old records.
 */
export const CHAIN_VERSION = 'coffre-audit/1';
/** the "previous hash" of the first record ever written */
export const GENESIS_HASH = '0'.repeat(64);

/** One record of the trail, as stored (times in ms since the epoch, UTC). */
export interface AuditRecord {
  seq: number;
  at: number;
  actor: string;
  action: string;
  outcome: AuditEvent['outcome'];
  reason: string | null;
  /** [kind, id] pairs sorted by kind (UTF-16 code unit order); [] when none */
  targets: [string, string][];
  sourceIp: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** lowercase hex SHA-256 */
  hash: string;
}

/** A validated event, stamped with its time, not yet placed in the chain. */
export type PendingRecord = Omit<AuditRecord, 'seq' | 'hash'>;

const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,4}$/;
const ACTOR = /^(?:(?:user|token|local|job):[\x21-\x7e]{1,128}|anonymous|system)$/;
const REASON = /^[A-Z][A-Z0-9_]{0,63}$/;
const KIND = /^[a-z][a-zA-Z0-9_]{0,31}$/;
/** ids, not names: printable ASCII without spaces */
const ID = /^[\x21-\x7e]{1,128}$/;
const OUTCOMES = new Set(['success', 'failure', 'denied']);
const MAX_TARGETS = 16;
const MAX_UA = 256;

/**
 * Validates an event and stamps it with `at`. Throws AUDIT_INVALID_EVENT (never echoing the value,
 * which might be the secret a buggy caller put there).
 */
export function normalizeEvent(e: AuditEvent, at: number): PendingRecord {
  if (typeof e !== 'object' || e === null) throw auditErrors.invalidEvent('event', 'is not an object');
  if (typeof e.action !== 'string' || e.action.length > 64 || !ACTION.test(e.action))
    throw auditErrors.invalidEvent('action', 'must be dotted lowercase, e.g. auth.login');
  if (typeof e.actor !== 'string' || !ACTOR.test(e.actor))
    throw auditErrors.invalidEvent(
      'actor',
      'must be user:<id>, token:<id>, local:<os-user>, job:<name>, anonymous or system',
    );
  if (!OUTCOMES.has(e.outcome)) throw auditErrors.invalidEvent('outcome', 'must be success, failure or denied');
  if (e.reason !== undefined && e.reason !== null && (typeof e.reason !== 'string' || !REASON.test(e.reason)))
    throw auditErrors.invalidEvent('reason', 'must be an UPPER_SNAKE code');
  const targets: [string, string][] = [];
  if (e.targets !== undefined && e.targets !== null) {
    if (typeof e.targets !== 'object') throw auditErrors.invalidEvent('targets', 'must be an object of ids');
    const entries = Object.entries(e.targets);
    if (entries.length > MAX_TARGETS) throw auditErrors.invalidEvent('targets', `has more than ${MAX_TARGETS} entries`);
    for (const [k, v] of entries) {
      if (!KIND.test(k)) throw auditErrors.invalidEvent('targets', 'has a key that is not a short identifier');
      if (typeof v !== 'string' || !ID.test(v))
        throw auditErrors.invalidEvent(
          `targets.${k}`,
          'must be an id (printable ASCII, no spaces, at most 128 characters)',
        );
      targets.push([k, v]);
    }
    targets.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  const s = e.source ?? {};
  let sourceIp: string | null = null;
  if (s.ip !== undefined && s.ip !== null && s.ip !== '') {
    if (typeof s.ip !== 'string' || net.isIP(s.ip) === 0)
      throw auditErrors.invalidEvent('source.ip', 'is not an IP address');
    sourceIp = s.ip;
  }
  let userAgent: string | null = null;
  if (typeof s.userAgent === 'string' && s.userAgent !== '') {
    // eslint-disable-next-line no-control-regex
    userAgent = s.userAgent
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
      .slice(0, MAX_UA)
      .toWellFormed();
  }
  let requestId: string | null = null;
  if (s.requestId !== undefined && s.requestId !== null && s.requestId !== '') {
    if (typeof s.requestId !== 'string' || !ID.test(s.requestId))
      throw auditErrors.invalidEvent('source.requestId', 'must be printable ASCII without spaces');
    requestId = s.requestId;
  }
  if (!Number.isSafeInteger(at) || at < 0 || at > 253402300799999)
    throw auditErrors.invalidEvent('at', 'is out of range');
  return {
    at,
    actor: e.actor,
    action: e.action,
    outcome: e.outcome,
    reason: e.reason ?? null,
    targets,
    sourceIp,
    userAgent,
    requestId,
  };
}

/**
 * The canonical encoding of a record (everything but its hash): the RFC 8785 (JCS) serialisation
 * of a JSON array in a fixed order. For this shape (strings, safe integers, null, nested arrays)
 * JCS is exactly ECMAScript JSON.stringify.
 */
export function canonicalEncoding(r: Omit<AuditRecord, 'hash'>): string {
  return JSON.stringify([
    CHAIN_VERSION,
    r.seq,
    new Date(r.at).toISOString(),
    r.actor,
    r.action,
    r.outcome,
    r.reason,
    r.targets,
    r.sourceIp,
    r.userAgent,
    r.requestId,
  ]);
}

/** hash_n = SHA-256(bytes(hash_{n-1}) ‖ UTF-8(canonical_n)), lowercase hex. */
export function chainHash(prevHash: string, canonical: string): string {
  return crypto.createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonical, 'utf8').digest('hex');
}

/** Places pending records after (seq, hash): returns them with seq and hash set. */
export function chain(prevSeq: number, prevHash: string, pending: readonly PendingRecord[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  let h = prevHash;
  let seq = prevSeq;
  for (const p of pending) {
    seq += 1;
    const r = { ...p, seq };
    h = chainHash(h, canonicalEncoding(r));
    out.push({ ...r, hash: h });
  }
  return out;
}
