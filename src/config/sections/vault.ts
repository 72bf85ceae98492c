import { Type, type Static } from '@sinclair/typebox';

/** The document vault (src/vault/). */
export const VaultSection = Type.Object(
  {
    /** largest single upload (plaintext bytes); larger ones get 413 UPLOAD_TOO_LARGE */
    maxUploadBytes: Type.Integer({ minimum: 0, default: 10 * 1024 ** 3 }),
    /** days a trashed document stays restorable; then its data keys are destroyed (crypto-shredding) */
    trashRetentionDays: Type.Integer({ minimum: 0, maximum: 3650, default: 30 }),
    /** per-workspace quota in bytes (sum of all versions, trash included) unless set per workspace; 0 = unlimited */
    defaultQuotaBytes: Type.Integer({ minimum: 0, default: 0 }),
    /** workspaces one person may create (members and admins alike; 0 = no limit). Only admins set or raise a quota. */
    maxWorkspacesPerUser: Type.Integer({ minimum: 0, default: 20 }),
    /** an upload whose blob is written but never committed is collected after this long (crash, kill -9) */
    pendingUploadGraceMs: Type.Integer({ minimum: 1000, default: 15 * 60_000 }),
    /** a search whose every word is common walks the newest documents: at most this many per page, then answers with what it found and a cursor to go on */
    searchScanRows: Type.Integer({ minimum: 1000, maximum: 10_000_000, default: 50_000 }),
    /** decrypted names and tags kept in memory for listing and search (entries; 0 = none) */
    nameCacheEntries: Type.Integer({ minimum: 0, default: 200_000 }),
    /** the weekly scrub (vault.scrub): re-reads every blob and checks every chunk and digest, at most this many plaintext bytes per second (0 = unbounded) */
    scrubBytesPerSecond: Type.Integer({ minimum: 0, default: 32 * 1024 * 1024 }),
    /** cron schedules of the vault jobs are in jobs.schedules: vault.trash-purge, vault.collect-orphans, vault.sweep-uploads, vault.scrub */
  },
  { additionalProperties: false, default: {} },
);
export type VaultConfig = Static<typeof VaultSection>;
