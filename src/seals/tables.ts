/**
 * Tables of the seals module (migrations/2026-12-07T0440-seals.ts).
 *
 * `seal_certificates`: every certificate the sealing key has had (self-signed at creation, then any
 * issued by the customer's CA and imported). The newest of a key is the current one; older ones stay
 * so seals made under them can still be checked.
 */
export interface SealsTables {
  seal_certificates: {
    /** lowercase hex SHA-256 of the DER certificate */
    fingerprint: string;
    /** the HSM signing key's name (`seal`) */
    key_name: string;
    pem: string;
    /** 'self-signed' | 'imported' */
    source: string;
    created_at: number;
  };
  /**
   * One deposit receipt per document version (migrations/2026-12-07T0700-seal-receipts.ts,
   * src/seals/receipts.ts). The row is written in the deposit's transaction (`facts_enc`, the audit
   * record's place); the signed body comes right after, or from the retrier if the HSM could not
   * sign then. Confidential values (the plaintext's digest, the name when asked for) are only in
   * FieldCipher ciphertext; the body carries a random salt, so neither the signature nor the RFC
   * 3161 token confirms a guessed digest. Deleted with the document at its destruction.
   */
  seal_receipts: {
    id: string;
    document_id: string;
    version: number;
    workspace_id: string;
    /** FieldCipher ciphertext of the deposit's facts (JSON), context `seal_receipts.facts:<id>` */
    facts_enc: string;
    audit_seq: number;
    audit_hash: string;
    created_at: number;
    /** FieldCipher ciphertext of the exact signed JSON, context `seal_receipts.body:<id>`; null until signed */
    body_enc: string | null;
    /** base64 DER ECDSA signature over the body */
    signature: string | null;
    cert_fingerprint: string | null;
    signed_at: number | null;
    /** 'none' | 'pending' | 'granted' */
    ts_state: string;
    /** base64 DER RFC 3161 TimeStampResp over the body */
    ts_token: string | null;
    ts_at: number | null;
    ts_attempts: number;
  };
  /**
   * RFC 3161 timestamps of the other signed proofs (migrations/2026-12-07T0720-seal-timestamps.ts,
   * src/seals/stamps.ts): destruction certificates (`kind` 'destruction-certificate', `subject` the
   * certificate id) and integrity reports ('integrity-report', the report's SHA-256). `body` is the
   * exact signed text (ids, digests and dates only: nothing confidential).
   */
  seal_timestamps: {
    id: string;
    kind: string;
    subject: string;
    body: string;
    /** hex SHA-256 of `body` */
    sha256: string;
    created_at: number;
    /** 'pending' | 'granted' */
    ts_state: string;
    /** base64 DER RFC 3161 TimeStampResp over `body` */
    ts_token: string | null;
    ts_at: number | null;
    ts_attempts: number;
  };
  /**
   * Signed integrity reports (migrations/2026-12-07T0740-seal-reports.ts, src/seals/reports.ts), for
   * the records managers: `body` is the exact signed canonical JSON (ids, counts, problem codes; no
   * name, no content), `signature` its base64 DER ECDSA signature. `ok` is 1 or 0.
   */
  seal_reports: {
    id: string;
    sha256: string;
    body: string;
    signature: string;
    cert_fingerprint: string;
    /** 'document' | 'workspace' | 'all' */
    scope_kind: string;
    scope_id: string | null;
    ok: number;
    versions: number;
    failures: number;
    /** who asked: a member's actor id, `local:<os-user>`, `job:vault.scrub` */
    actor: string;
    created_at: number;
  };
}
