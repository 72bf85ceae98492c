import type { Readable } from 'node:stream';
import type { WorkspaceRole } from '../access/index.js';
import type { AuditSource, AuditStamp } from '../audit/types.js';
import type { DepositFacts, PreparedReceipt } from '../seals/index.js';
import type { Actor } from '../http/index.js';
import type { ByteRange } from './range.js';

/**
 * What the vault needs from the modules around it, each as one small port.
 * main.ts adapts the real implementations (keys, storage, access) to these.
 */

/** A workspace as the caller sees it: their role in it, and what the vault needs to enforce. */
export interface WorkspaceView {
  id: string;
  role: WorkspaceRole;
  /** bytes; null = vault.defaultQuotaBytes */
  quotaBytes: number | null;
  /** archived workspaces are read-only */
  writable: boolean;
}

/**
 * Need-to-know (access module's policy): the caller's view of a workspace, or null when it does
 * not exist or the caller is not a member. Admins are not members by default and get null.
 */
export interface WorkspaceAccess {
  view(actor: Actor, workspaceId: string): Promise<WorkspaceView | null>;
}

/**
 * Encrypted blobs: the keys module's streaming format over a BlobStore. Plaintext goes in and
 * comes out; the store only ever sees ciphertext. `blobId` is bound into the ciphertext (AAD), so
 * a blob cannot be swapped for another.
 */
export interface SealedBlobs {
  /**
   * Encrypts `plaintext` under the data key into the new blob `blobId`. Resolves once the blob is
   * durable (written, fsynced, renamed), with the SHA-256 (hex) of the plaintext it hashed on
   * the way. Rejects, leaving no blob, when `plaintext` errors. A `plaintext` handed over
   * (src/shared/buffers.ts) has its pieces freed once encrypted. `maxBytes`: the plaintext is
   * known to be at most this long (its Content-Length), which lets a small one skip the worker.
   */
  write(
    blobId: string,
    dek: { keyId: string; key: Buffer },
    plaintext: Readable,
    o?: { maxBytes?: number },
  ): Promise<{ storedSize: number; sha256: string }>;
  /**
   * Plaintext of the blob, or of bytes `range` of it (random access by chunk); the data key is
   * fetched by id (DataKeys) once the blob's header was read. Errors mid-stream (KEYS_INTEGRITY)
   * on tampering, before releasing any byte of a bad chunk. `verify` (whole reads only): gets the
   * SHA-256 (hex) and size of the plaintext, computed on the way (off the event loop on a server),
   * before the last piece is released; an error it returns ends the stream instead.
   */
  read(
    blobId: string,
    keyId: string,
    range?: ByteRange,
    verify?: (got: { sha256: string; size: number }) => Error | undefined,
  ): Promise<Readable>;
  delete(blobId: string): Promise<void>;
  list(): AsyncIterable<string>;
  /** removes temp files of writes that died (kill -9) more than `olderThanMs` ago */
  collectTemp?(olderThanMs: number, nowMs: number): Promise<number>;
}

/** Who acts and from where: every vault operation is audited with it. */
export interface VaultCaller {
  actor: Actor;
  source?: AuditSource;
}

/** A document as retention rules see it: ids and dates only. */
export interface GuardedDocument {
  id: string;
  workspaceId: string;
  /** its folder, then each parent up to the root (empty at the root) */
  folderChain: string[];
  /** deposit time of its newest version (ms): the keeping period runs from there */
  depositedAt: number;
}

/** What a destroyed document was, written in the transaction that deletes its rows. */
export interface DestructionRecord {
  documentId: string;
  workspaceId: string;
  folderId: string | null;
  versions: {
    version: number;
    sha256: string;
    size: number;
    depositedAt: number;
    depositedBy: string;
    keyId: string;
  }[];
  trashedAt: number | null;
  destroyedAt: number;
  /** who ordered the destruction (an owner, or the trash-retention job) */
  actor: string;
}

/**
 * Retention and legal hold (the records module), as the vault consults them. Throws an AppError
 * (409) to refuse; the vault asks before trashing, destroying or moving a document and before
 * moving a folder.
 */
export interface RetentionGuard {
  assertDestroyable(doc: GuardedDocument, at: number): Promise<void>;
  /** moving to `toChain` (the new folder and its parents) must not shorten its keeping or lift a hold */
  assertMovable(doc: GuardedDocument, toChain: string[], at: number): Promise<void>;
  /** moving folder `folderId` from under `fromChain` to under `toChain` (parents only) */
  assertFolderMovable(
    workspaceId: string,
    folderId: string,
    fromChain: string[],
    toChain: string[],
    at: number,
  ): Promise<void>;
  /** the destruction certificate, inside the transaction that deletes the document's rows */
  certify(trx: import('../db/index.js').SharedDb, r: DestructionRecord): Promise<void>;
}

/** No records module: nothing is retained. */
export const NO_RETENTION: RetentionGuard = {
  assertDestroyable: async () => undefined,
  assertMovable: async () => undefined,
  assertFolderMovable: async () => undefined,
  certify: async () => undefined,
};

/**
 * Deposit receipts (src/seals), as the vault issues them: `prepare` before the deposit's
 * transaction, `record` inside it (a version never commits without its receipt), `issue` after the
 * commit (never throws); `forget` inside a document's destruction.
 */
export interface ReceiptIssuer {
  prepare(f: DepositFacts): Promise<PreparedReceipt>;
  record(
    trx: import('../db/index.js').SharedDb,
    p: PreparedReceipt,
    at: { version: number; depositedAt: number; audit: AuditStamp },
  ): Promise<void>;
  issue(id: string): Promise<void>;
  /** the receipt id of a version, if it has one (a replayed upload answers with it) */
  idOf(documentId: string, version: number): Promise<string | undefined>;
  forget(trx: import('../db/index.js').SharedDb, documentId: string): Promise<void>;
}

/** RFC 3161 timestamps of signed integrity reports (src/seals): asked at once, retried while pending. */
export interface ReportStamper {
  readonly configured: boolean;
  stamp(
    kind: string,
    subject: string,
    body: string,
  ): Promise<{ state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string }>;
}

/** Where signed integrity reports are kept for the records managers (src/seals). */
export interface ReportKeeper {
  keep(r: {
    body: string;
    signature: string;
    certificateFingerprint: string;
    scope: { kind: string; id: string | null };
    ok: boolean;
    versions: number;
    failures: number;
    actor: string;
  }): Promise<void>;
}

/** The appliance's sealing key (src/seals), as the vault uses it to sign integrity reports. */
export interface ReportSigner {
  sign(data: Buffer): Promise<Buffer>;
  certificate(): Promise<{ fingerprint: string }>;
}

/**
 * User names of the actors who deposited versions (`user:<id>`, `token:<id>`), for display beside
 * the ids. Ids that belong to no user (the appliance, `local:<os-user>`) are left out.
 */
export interface ActorNames {
  usernames(actorIds: readonly string[]): Promise<Map<string, string>>;
}
