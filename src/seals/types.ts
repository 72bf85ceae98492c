/**
 * The seals module's interfaces (docs/proofs.md). A `Sealer` signs bytes with the appliance's
 * sealing key (ECDSA P-256 in the HSM, never extractable); anyone checks the signature offline with
 * the certificate and `openssl` alone.
 */

export interface SealCertificate {
  pem: string;
  /** lowercase hex SHA-256 of the DER certificate */
  fingerprint: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** 'self-signed' (made at creation) or 'imported' (issued by the customer's CA) */
  source: 'self-signed' | 'imported';
}

export interface Sealer {
  /**
   * Signs `data` inside the HSM: ECDSA P-256 over SHA-256(data), DER-encoded (ECDSA-Sig-Value), as
   * `openssl dgst -sha256 -verify pub.pem -signature sig.der data` reads it. 503 KEYS_UNAVAILABLE
   * while the HSM is down.
   */
  sign(data: Buffer): Promise<Buffer>;
  /** The current certificate of the sealing key. */
  certificate(): Promise<SealCertificate>;
  /** Every certificate the key has had, newest first (proofs made under an older one still check). */
  certificates(): Promise<SealCertificate[]>;
  /** Checks a signature made by `sign` (no HSM) against the given certificate, or any the key has had. */
  verify(data: Buffer, signature: Buffer, certPem?: string): Promise<boolean>;
}

/** An RFC 3161 time-stamping client (src/seals/tsa.ts). */
export interface Timestamper {
  /** false when no TSA is configured: items are not timestamped (state `none`) */
  readonly configured: boolean;
  /** a granted, checked timestamp of `data`; TSA_UNAVAILABLE (keep the item pending) or TSA_INVALID */
  timestamp(data: Buffer): Promise<{ response: Buffer; genTime: Date; serial: string; url: string }>;
}

/** Items waiting for their timestamp (the owner's table): the retrier asks, and reports what it got. */
export interface PendingTimestamps {
  /** e.g. `audit.seal`, `receipt` */
  readonly name: string;
  /** the oldest pending items first: id, the exact bytes to timestamp, since when (ms) */
  pending(limit: number): Promise<{ id: string; data: Buffer; since: number }[]>;
  granted(id: string, t: { response: Buffer; genTime: Date }): Promise<void>;
}
