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
}
