import { AppError, type AppErrorOptions } from '../shared/errors.js';

/**
 * Stable error codes of the backup module (docs/errors.md). Messages never hold secrets: target
 * URLs are shown without credentials, keys never.
 *
 * `retryable` marks transient failures (connection lost, timeout) that the retry wrapper
 * repeats with back-off; everything else fails at once.
 */
export class BackupError extends AppError {
  readonly retryable: boolean;
  constructor(code: string, message: string, opts: AppErrorOptions & { retryable?: boolean } = {}) {
    super(code, message, opts);
    this.retryable = opts.retryable ?? false;
  }
}

export const backupErrors = {
  unreachable: (what: string, why: string, cause?: unknown) =>
    new BackupError('TARGET_UNREACHABLE', `${what}: ${why}`, {
      cause,
      retryable: true,
      httpStatus: 502,
      hint: 'check the network path and that the target host is up',
    }),
  stalled: (what: string, why: string) =>
    new BackupError('TARGET_STALLED', `${what}: stalled (${why})`, {
      retryable: true,
      httpStatus: 504,
      hint: 'the connection is up but the server stopped answering (its SFTP process hung or the disk blocks); check the target host; the next run starts afresh',
    }),
  auth: (what: string, why: string) =>
    new BackupError('TARGET_AUTH', `${what}: authentication refused (${why})`, {
      httpStatus: 502,
      hint: 'check the identity or password file and the account at the target',
    }),
  hostKey: (what: string, presented: string) =>
    new BackupError(
      'TARGET_HOST_KEY',
      `${what}: the server presented host key ${presented}, which is not the pinned one`,
      {
        httpStatus: 502,
        hint: 'if the target was reinstalled, verify its key out of band and register the target again with --host-key',
      },
    ),
  full: (what: string, why: string) =>
    new BackupError('TARGET_FULL', `${what}: not enough space (${why})`, {
      httpStatus: 507,
      hint: 'free space at the target or grow its volume',
    }),
  io: (what: string, why: string, cause?: unknown, retryable = false) =>
    new BackupError('TARGET_IO', `${what}: ${why}`, { cause, retryable, httpStatus: 502 }),
  exists: (what: string, p: string) =>
    new BackupError('TARGET_EXISTS', `${what}: ${p} already exists; nothing was overwritten`, { httpStatus: 409 }),
  locked: (what: string, p: string) =>
    new BackupError('TARGET_LOCKED', `${what}: ${p} is retained by the bucket's Object Lock; nothing was deleted`, {
      httpStatus: 409,
      hint: 'a backup stays until its retain-until date (the expiry of its slot); its key is already destroyed, and the next run deletes it once the date has passed',
    }),
  notFound: (what: string, p: string) =>
    new BackupError('TARGET_NOT_FOUND', `${what}: ${p} not found`, { httpStatus: 404 }),
  badPath: (p: string) =>
    new BackupError('TARGET_BAD_PATH', `invalid path at the target: ${JSON.stringify(p)}`, {
      httpStatus: 400,
      exitCode: 2,
    }),
  refused: (message: string, hint?: string) =>
    new BackupError('TARGET_REFUSED', message, { httpStatus: 400, exitCode: 2, ...(hint ? { hint } : {}) }),
  usage: (message: string, hint?: string) =>
    new BackupError('USAGE', message, { httpStatus: 400, exitCode: 2, ...(hint ? { hint } : {}) }),
  integrity: (message: string) =>
    new BackupError('BACKUP_INTEGRITY', message, {
      httpStatus: 500,
      hint: 'the copy at the target is damaged or was altered; take a new backup and check the target',
    }),
  escrow: (
    message: string,
    hint = 'use an OpenPGP v4 key (RSA ≥ 3072 or Curve25519/NIST ECDH) without the AEAD (SEIPDv2) feature, e.g. made by gpg 2.2',
  ) => new BackupError('ESCROW_KEY_REFUSED', message, { httpStatus: 400, exitCode: 2, hint }),
  escrowExists: (fingerprint: string) =>
    new BackupError('ESCROW_KEY_EXISTS', `escrow key ${fingerprint} is already registered; nothing was changed`, {
      httpStatus: 409,
      exitCode: 2,
    }),
  localFull: (why: string) =>
    new BackupError('BACKUP_LOCAL_FULL', `not enough local space: ${why}`, {
      httpStatus: 507,
      hint: 'free space on the appliance (backup.scratchDir) and run again',
    }),
  unsupported: (message: string, hint?: string) =>
    new BackupError('BACKUP_UNSUPPORTED', message, { httpStatus: 501, ...(hint ? { hint } : {}) }),
  destroyed: (id: string) =>
    new BackupError(
      'BACKUP_DESTROYED',
      `backup ${id} was destroyed: its key no longer exists in the HSM, so no copy of it can be decrypted`,
      { httpStatus: 410, exitCode: 1, hint: 'restore a newer backup (see `coffre backup list`)' },
    ),
  notFoundBackup: (id: string) =>
    new BackupError('BACKUP_NOT_FOUND', `no backup ${id}`, {
      httpStatus: 404,
      exitCode: 1,
      hint: 'see `coffre backup list`',
    }),
};

export const isRetryable = (e: unknown): boolean => e instanceof BackupError && e.retryable;
