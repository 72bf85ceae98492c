import type { Kysely, Selectable } from 'kysely';
import type { BackupSchema } from '../db/index.js';
import type { WrappedKey } from '../keys/types.js';
import { wrappedToJson } from './format.js';
import type { BackupTables } from './tables.js';
import type { TargetSpec, TargetType } from './targets/types.js';

/** BackupSchema access of the backup catalogue (tables.ts). Plain functions over a Kysely (or a transaction). */

export type TargetRow = Selectable<BackupTables['backup_targets']>;
export type BackupRow = Selectable<BackupTables['backups']>;
export type EscrowRow = Selectable<BackupTables['backup_escrow_keys']>;

export interface TargetInfo {
  name: string;
  type: TargetType;
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  hostKey: string | null;
  identityFile: string | null;
  passwordFile: string | null;
  createdAt: number;
  createdBy: string;
}

export const targetFromRow = (r: TargetRow): TargetInfo => ({
  name: r.name,
  type: r.type as TargetInfo['type'],
  url: r.url,
  jurisdiction: r.jurisdiction,
  lat: Number(r.lat),
  lon: Number(r.lon),
  hostKey: r.host_key,
  identityFile: r.identity_file,
  passwordFile: r.password_file,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
});

export const specOf = (t: TargetInfo): TargetSpec => ({
  type: t.type,
  url: t.url,
  hostKey: t.hostKey,
  identityFile: t.identityFile,
  passwordFile: t.passwordFile,
});

export async function listTargets(db: Kysely<BackupSchema>): Promise<TargetInfo[]> {
  return (await db.selectFrom('backup_targets').selectAll().orderBy('name').execute()).map(targetFromRow);
}

export async function getTarget(db: Kysely<BackupSchema>, name: string): Promise<TargetInfo | null> {
  const r = await db.selectFrom('backup_targets').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? targetFromRow(r) : null;
}

export async function insertTarget(db: Kysely<BackupSchema>, t: TargetInfo): Promise<void> {
  await db
    .insertInto('backup_targets')
    .values({
      name: t.name,
      type: t.type,
      url: t.url,
      jurisdiction: t.jurisdiction,
      lat: t.lat,
      lon: t.lon,
      host_key: t.hostKey,
      identity_file: t.identityFile,
      password_file: t.passwordFile,
      created_at: t.createdAt,
      created_by: t.createdBy,
    })
    .execute();
}

export async function listEscrow(db: Kysely<BackupSchema>): Promise<EscrowRow[]> {
  return db.selectFrom('backup_escrow_keys').selectAll().orderBy('created_at').execute();
}

export interface BackupInfo {
  id: string;
  target: string;
  slot: number;
  createdAt: number;
  state: string;
  plainSize: number | null;
  size: number | null;
  parts: number | null;
  members: number | null;
  escrow: string[];
  verifiedAt: number | null;
  error: string | null;
  deletedAt: number | null;
  deletedReason: string | null;
  /** whether the catalogue still holds its wrapped key */
  hasKey: boolean;
}

export const backupFromRow = (r: BackupRow): BackupInfo => ({
  id: r.id,
  target: r.target,
  slot: Number(r.slot),
  createdAt: Number(r.created_at),
  state: r.state,
  plainSize: r.plain_size === null ? null : Number(r.plain_size),
  size: r.size === null ? null : Number(r.size),
  parts: r.parts === null ? null : Number(r.parts),
  members: r.members === null ? null : Number(r.members),
  escrow: r.escrow ? (JSON.parse(r.escrow) as string[]) : [],
  verifiedAt: r.verified_at === null ? null : Number(r.verified_at),
  error: r.error,
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
  deletedReason: r.deleted_reason,
  hasKey: r.wrapped_key !== null,
});

/** A format-1 wrapped session key as the catalogue kept it (tests and key rotation read such rows). */
export const encodeWrapped = (w: WrappedKey): string => JSON.stringify(wrappedToJson(w));

/**
 * Live backup session keys under each KEK version, for key rotation (a version that still wraps
 * one is never destroyed): every format-1 backup whose catalogue row still holds its wrapped key.
 */
export function backupKeyHolder(db: Kysely<BackupSchema>): {
  name: string;
  countUnder(kekVersion: number): Promise<number>;
} {
  return {
    name: 'backupKeys',
    countUnder: async (kekVersion) => {
      const rows = await db.selectFrom('backups').select('wrapped_key').where('wrapped_key', 'is not', null).execute();
      // format-2 backups (a key reference to their own HSM key) do not depend on any KEK version
      return rows.filter((r) => (JSON.parse(r.wrapped_key!) as { kekVersion?: unknown }).kekVersion === kekVersion)
        .length;
    },
  };
}

export async function getBackupRow(db: Kysely<BackupSchema>, id: string): Promise<BackupRow | undefined> {
  return db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listBackups(
  db: Kysely<BackupSchema>,
  o: { target?: string; includeDeleted?: boolean } = {},
): Promise<BackupInfo[]> {
  let q = db.selectFrom('backups').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc');
  if (o.target) q = q.where('target', '=', o.target);
  if (!o.includeDeleted) q = q.where('state', 'not in', ['deleted', 'failed']);
  return (await q.execute()).map(backupFromRow);
}

export async function recordCheck(
  db: Kysely<BackupSchema>,
  c: {
    backupId: string;
    kind: string;
    startedAt: number;
    endedAt: number;
    ok: boolean;
    error?: string | null;
    details?: unknown;
  },
): Promise<void> {
  await db
    .insertInto('backup_checks')
    .values({
      backup_id: c.backupId,
      kind: c.kind,
      started_at: c.startedAt,
      ended_at: c.endedAt,
      ok: c.ok ? 1 : 0,
      error: c.error ?? null,
      details: c.details === undefined ? null : JSON.stringify(c.details),
    })
    .execute();
}

export async function lastChecks(db: Kysely<BackupSchema>, backupId: string, limit = 10) {
  return db
    .selectFrom('backup_checks')
    .selectAll()
    .where('backup_id', '=', backupId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}
