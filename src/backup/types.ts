import type { Kysely } from 'kysely';
import type { BackupConfig } from '../config/sections/backup.js';
import type { KeysConfig } from '../config/sections/keys.js';
import type { SiteConfig } from '../config/sections/site.js';
import type { StorageConfig } from '../config/sections/storage.js';
import type { BackupSchema, DatabaseHandle, SharedDb } from '../db/index.js';
import type { Auditor } from '../audit/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { KeyProvider } from '../keys/types.js';
import type { BlobStore } from '../storage/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { JobProgress } from '../jobs/types.js';
import type { TargetType } from './targets/types.js';

/** The part of the appliance's configuration the backup module reads (main.ts cuts it out). */
export interface BackupServiceConfig {
  backup: BackupConfig;
  /** the appliance's declared site: distance and jurisdiction rules, weekday slots, the manifest */
  site: SiteConfig;
  applianceId: string;
  /** the data directory: its config.json goes into every backup */
  dataDir: string;
  /** how this appliance reaches its HSM: recorded in each sidecar, used by the restore drill */
  keys: KeysConfig;
  /** the blob store the backup engine reads from */
  storage: StorageConfig;
  /** the database lease that keeps one operation on targets at a time */
  leaseTtlMs: number;
}

/** What the backup module needs from the appliance (wired in main.ts). */
export interface BackupDeps {
  db: DatabaseHandle;
  config: BackupServiceConfig;
  /** the customer's HSM: wraps session keys, MACs sidecars */
  keys: KeyProvider;
  /** the raw blob store (encrypted blobs as stored, not the decrypting wrapper) */
  blobs: BlobStore;
  /** the blob ids a (snapshot) database references: the vault's `referencedBlobIds` */
  blobRefs: (snapshot: SharedDb) => AsyncIterable<string>;
  audit: Auditor;
  /**
   * The audit module's `exportCheckpoints()`: MACs the trail's head in the HSM when records were
   * written since the last checkpoint. Called before each snapshot, so every backup carries a
   * checkpoint of its own trail (fail closed: no checkpoint, no backup).
   */
  exportAuditCheckpoints: () => Promise<unknown>;
  alerts: Alerter;
  clock: Clock;
  log: Logger;
}

export type Progress = (p: JobProgress) => void;

export interface AddTargetInput {
  name: string;
  type: TargetType;
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  hostKey?: string | undefined;
  identityFile?: string | undefined;
  passwordFile?: string | undefined;
}

export interface TargetRunReport {
  target: string;
  ok: boolean;
  backupId?: string;
  error?: string;
  code?: string;
  plainSize?: number;
  size?: number;
  parts?: number;
  members?: number;
  durationMs?: number;
  uploadMs?: number;
  verifyMs?: number;
  deleted: { id: string; reason: string }[];
}

export interface RunReport {
  ok: boolean;
  targets: TargetRunReport[];
}

export const pct = (n: number, total: number) => (total > 0 ? Math.min(100, Math.round((n / total) * 1000) / 10) : 0);

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
