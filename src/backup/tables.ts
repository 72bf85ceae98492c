import type { Generated } from 'kysely';

/**
 * The backup catalogue (migrations/2026-11-22T1900-backup.ts). Times are ms since the epoch.
 * `backups.wrapped_key` is the HSM-wrapped session key (JSON: kekLabel, kekVersion, mechanism,
 * base64 bytes); it is set to NULL, with the row's deletion, when the backup is destroyed
 * (crypto-shredding). These rows are removed from the database snapshot inside every backup, so
 * a backup never carries another backup's key.
 */
export interface BackupTables {
  backup_targets: {
    name: string;
    type: string; // 'sftp' | 'path' | 's3'
    /** without credentials */
    url: string;
    jurisdiction: string;
    lat: number;
    lon: number;
    /** `SHA256:…` pinned host key (sftp) */
    host_key: string | null;
    identity_file: string | null;
    password_file: string | null;
    created_at: number;
    created_by: string;
  };
  backup_escrow_keys: {
    fingerprint: string;
    armored: string;
    /** JSON array */
    user_ids: string;
    algorithm: string;
    expires_at: number | null;
    created_at: number;
    created_by: string;
  };
  backups: {
    id: string;
    target: string;
    slot: number;
    created_at: number;
    /** 'uploading' | 'complete' | 'failed' | 'deleted' | 'delete-pending' */
    state: string;
    plain_size: number | null;
    size: number | null;
    parts: number | null;
    members: number | null;
    wrapped_key: string | null;
    /** JSON array of escrow fingerprints */
    escrow: string | null;
    verified_at: number | null;
    error: string | null;
    deleted_at: number | null;
    deleted_reason: string | null;
  };
  /** changes to targets and escrow keys awaiting a second person (migrations/2026-12-07T0400-backup-requests.ts, ./requests.ts) */
  backup_change_requests: {
    id: string;
    /** 'target.add' | 'target.remove' | 'escrow.add' | 'escrow.remove' | 'escrow.expire' */
    kind: string;
    /** JSON: the change exactly as it will be applied */
    payload: string;
    /** hex SHA-256 of the canonical kind and payload (./requests.ts `changeDigest`) */
    digest: string;
    /** one line for lists and alerts: no secret, no confidential field */
    summary: string;
    /** 'pending' | 'applying' | 'applied' | 'rejected' | 'expired' | 'failed' */
    state: string;
    requested_by: string;
    requested_at: number;
    expires_at: number;
    decided_by: string | null;
    decided_at: number | null;
    /** rejection reason, or the error code a failed application ended with */
    reason: string | null;
  };
  backup_checks: {
    id: Generated<number>;
    backup_id: string;
    /** 'upload' | 'verify' | 'weekly' | 'drill' | 'restore' */
    kind: string;
    started_at: number;
    ended_at: number;
    ok: number;
    error: string | null;
    /** JSON (drill: RTO, counts, samples) */
    details: string | null;
  };
}
