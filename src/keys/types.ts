/**
 * Key interfaces (docs/architecture.md, docs/hsm.md). Implementations: ./pkcs11/ (the only one: there is no
 * software fallback, invariant 3).
 */

/** A data key wrapped by a KEK inside the HSM. Self-describing: rotation never breaks it. */
export interface WrappedKey {
  /** HSM label of the KEK version, e.g. `coffre-kek-3` */
  kekLabel: string;
  kekVersion: number;
  /** e.g. `CKM_AES_KEY_WRAP_PAD` */
  mechanism: string;
  /** wrapped bytes */
  wrapped: Buffer;
}

export interface KeyHealth {
  up: boolean;
  /** CKR_… code or message of the last failure, never a secret */
  lastError?: string;
  lastLatencyMs?: number;
  reconnects: number;
  /** HSM operations (wrap, unwrap, mac, verify) since start: monitoring and benchmarks */
  operations: number;
}

/**
 * The customer's HSM. Small on purpose. Every method fails with AppError
 * KEYS_UNAVAILABLE (503) when the HSM is missing, locked or down, and with KEYS_INTEGRITY when
 * input was tampered with. Key material of a KEK never leaves the HSM.
 */
export interface KeyProvider {
  /** wraps 32 raw bytes under the current KEK version */
  wrap(dek: Buffer): Promise<WrappedKey>;
  /** unwraps with the KEK version the wrapped key names */
  unwrap(w: WrappedKey): Promise<Buffer>;
  /**
   * HMAC-SHA256 under a named non-extractable HSM key: audit checkpoints, backup session keys.
   * Created on first use, unless `create: false`: then a missing key is KEY_DESTROYED (410).
   */
  mac(keyName: string, data: Buffer, o?: { create?: boolean }): Promise<Buffer>;
  /** verifies a MAC made by `mac` (constant time, inside the HSM) */
  verifyMac(keyName: string, data: Buffer, mac: Buffer): Promise<boolean>;
  /** destroys the named HMAC key inside the HSM (crypto-shredding); false when there was none */
  destroyMacKey(keyName: string): Promise<boolean>;
  /** creates the named HMAC key if it does not exist (token write: the slow deadline, not the per-call one) */
  createMacKey(keyName: string): Promise<void>;
  health(): KeyHealth;
  close(): Promise<void>;
}

/**
 * Signing key pairs in the HSM (seals, receipts, reports): ECDSA P-256, the private half sensitive
 * and never extractable. Separate from KeyProvider: only src/seals/ needs it.
 */
export interface SigningKeys {
  /**
   * The public key (SubjectPublicKeyInfo DER) of the pair `name`. With `create: true` the pair is
   * generated inside the HSM when missing (token write: the slow deadline); without, a missing pair
   * is KEY_DESTROYED (410).
   */
  signingPublicKey(name: string, o?: { create?: boolean }): Promise<Buffer>;
  /** ECDSA signature of a SHA-256 digest (32 bytes) inside the HSM: raw r‖s, 64 bytes (IEEE P1363) */
  signDigest(name: string, digest: Buffer): Promise<Buffer>;
  /** what the HSM says of the private half (never its value) */
  signingKeyAttributes(name: string): Promise<SigningKeyAttributes>;
}

/** Attributes of a signing key's private half as read back from the HSM. */
export interface SigningKeyAttributes {
  label: string;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
  token: boolean;
  private: boolean;
}

/**
 * Something outside `data_keys` that keeps keys wrapped under a KEK version (backup session keys):
 * rotation counts them before it destroys a version, and keeps any version that still wraps one.
 */
export interface WrappedKeyHolder {
  /** e.g. `backupKeys` (reported as such in the rotation result) */
  readonly name: string;
  /** live keys it holds wrapped under this KEK version */
  countUnder(kekVersion: number): Promise<number>;
}

/** What the HSM's state does, as the appliance needs to hear it (alerts, the data key cache). */
export type KeyEvent =
  /** the HSM cannot be used: down, locked, hung past the deadline, or its current KEK is gone */
  | { kind: 'down'; reason: string }
  /** usable again */
  | { kind: 'up' }
  /** a KEK version was looked up and is not in the HSM (pulled by the customer): cached data keys must go */
  | { kind: 'kek-missing'; label: string };

/** Subscription to KeyEvent; returns the unsubscribe function. Separate from KeyProvider. */
export interface KeyEvents {
  on(listener: (e: KeyEvent) => void): () => void;
}

/** Attributes of a KEK version as read back from the HSM (never its value). */
export interface KekAttributes {
  label: string;
  version: number;
  keyType: string;
  valueLen: number;
  token: boolean;
  private: boolean;
  extractable: boolean;
  sensitive: boolean;
  neverExtractable: boolean;
  alwaysSensitive: boolean;
  local: boolean;
  modifiable: boolean;
  wrap: boolean;
  unwrap: boolean;
  encrypt: boolean;
  decrypt: boolean;
  sign: boolean;
  verify: boolean;
  derive: boolean;
  /** wrapping mechanism this version is used with */
  mechanism: string;
}

export interface TokenInfo {
  module: string;
  slotId: number;
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
}

/**
 * Administration of KEK versions (`coffre keys init|status|rotate`). Separate from KeyProvider on
 * purpose: request paths never need it.
 */
export interface KekAdmin {
  /** fails with KEYS_UNAVAILABLE (CKR code, config key to check) when the HSM cannot be used */
  ready(): Promise<void>;
  token(): Promise<TokenInfo>;
  /** KEK versions present in the HSM, ascending */
  kekVersions(): Promise<number[]>;
  /** the version `wrap` uses: the highest present */
  currentKekVersion(): Promise<number>;
  kekAttributes(version: number): Promise<KekAttributes>;
  /** generates `<kekLabel>-<version>` inside the HSM (non-extractable, sensitive) */
  createKekVersion(version: number): Promise<KekAttributes>;
  destroyKekVersion(version: number): Promise<void>;
  /**
   * Re-wraps a wrapped key under KEK `toVersion` (rotation). With key wrapping on both sides the
   * data key is unwrapped into a sensitive session object and wrapped again inside the HSM: it
   * never reaches host memory. Integrity failures are KEYS_INTEGRITY, as for unwrap.
   */
  rewrap(w: WrappedKey, toVersion: number): Promise<WrappedKey>;
  /** one HSM round trip; returns its latency in ms */
  ping(): Promise<number>;
}

/**
 * Envelope encryption: data keys (DEKs), stored wrapped in the database, cached unwrapped in a
 * bounded memory cache (wiped on eviction).
 */
export interface DataKeys {
  /** creates a fresh AES-256 DEK for `scope` (e.g. `doc:<id>:v<n>`, `field:users`) */
  create(scope: string): Promise<{ keyId: string; key: Buffer }>;
  /** the DEK by id (cache, else HSM unwrap) */
  get(keyId: string): Promise<Buffer>;
  /**
   * crypto-shredding: the wrapped keys are deleted, and no copy of their bytes is left in the
   * database's files (write-ahead log included); data under them is unrecoverable
   */
  destroy(keyIds: string | readonly string[]): Promise<unknown>;
}

/**
 * Confidential columns (names, descriptions, e-mail, phone): AES-256-GCM under a DEK of the
 * scope; `context` (e.g. `users.email:<userId>`) is bound as AAD so a value cannot be moved to
 * another row or column.
 */
export interface FieldCipher {
  encrypt(scope: string, plaintext: string, context: string): Promise<string>;
  decrypt(ciphertext: string, context: string): Promise<string>;
  /** deterministic HMAC for lookup (e.g. e-mail at reset), under an HSM-protected key */
  blindIndex(purpose: string, value: string): Promise<string>;
  /**
   * Search tokens: for each value, the first 16 bytes of the same HMAC under the same per-purpose
   * key as `blindIndex`, in base64url (22 characters), computed under one key fetch for the batch.
   */
  blindTokens(purpose: string, values: readonly string[]): Promise<string[]>;
}
