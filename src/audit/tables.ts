/**
 * Tables owned by the audit module (migrations/2026-11-22T1500-audit.ts).
 * Times are milliseconds since the epoch (UTC); hashes and MACs are lowercase hex.
 */
export interface AuditTables {
  /** the trail: one row per event, seq contiguous from 1 (or from the last pruned seq + 1) */
  audit_events: {
    seq: number;
    at: number;
    actor: string;
    action: string;
    outcome: string;
    reason: string | null;
    /** canonical JSON of [[kind, id], …] sorted by kind (see docs/formats.md "Audit chain") */
    targets: string | null;
    source_ip: string | null;
    user_agent: string | null;
    request_id: string | null;
    /** SHA-256(previous hash ‖ canonical encoding of this record) */
    hash: string;
  };
  /** target ids of each event, for queries by target (not part of the chain: derived from `targets`) */
  audit_targets: { seq: number; kind: string; id: string };
  /** the single row (id = 1) holding the chain head; updated in every appending transaction, which serialises writers */
  audit_head: { id: number; seq: number; hash: string };
  /** HSM-MACed checkpoints of the head (kind: periodic | stop | pruned | manual), one per (seq, kind) */
  audit_checkpoints: {
    seq: number;
    kind: string;
    at: number;
    hash: string;
    key_name: string;
    mac: string;
    /** base64 DER ECDSA signature of the sealing key over the checkpoint's encoding (migrations/2026-12-07T0450-audit-seals.ts); null before */
    signature: string | null;
  };
  /**
   * One signed seal per UTC day (docs/formats.md "Daily audit seals"): `body` is the exact JSON that
   * was signed, `sha256` its digest (the next day's seal names it). ts_state: 'none' | 'pending' | 'granted'.
   */
  audit_seals: {
    day: string;
    last_seq: number;
    last_hash: string;
    body: string;
    sha256: string;
    /** base64 DER ECDSA signature over `body` */
    signature: string;
    cert_fingerprint: string;
    created_at: number;
    ts_state: string;
    /** base64 DER RFC 3161 TimeStampResp over `body` */
    ts_token: string | null;
    ts_at: number | null;
    ts_attempts: number;
  };
  /** per export sink (e.g. syslog): the last seq delivered; the trail itself is the durable queue */
  audit_cursors: { sink: string; seq: number; updated_at: number };
}
