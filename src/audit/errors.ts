import { AppError } from '../shared/errors.js';

/** Errors of the audit module (stable codes). */
export const auditErrors = {
  /** The trail could not be written: the action it records is refused (fail closed, invariant 3). */
  unavailable: (cause: unknown) =>
    new AppError(
      'AUDIT_UNAVAILABLE',
      `the audit trail cannot be written (${describeDbError(cause)}); the action was refused and nothing was changed`,
      {
        httpStatus: 503,
        expose: true,
        exitCode: 1,
        hint: 'check the database (disk full, read-only file system, permissions) and retry',
        cause,
      },
    ),
  /** A caller built an event the trail refuses (a bug in the caller, never shown with its value). */
  invalidEvent: (field: string, why: string) =>
    new AppError('AUDIT_INVALID_EVENT', `audit event refused: ${field} ${why}`, {
      httpStatus: 500,
      expose: false,
      exitCode: 1,
    }),
  /** `record(trx, e)` called outside a transaction. */
  notInTransaction: () =>
    new AppError(
      'AUDIT_NOT_IN_TRANSACTION',
      'Auditor.record() needs the caller’s transaction (use recordNow() outside one)',
      { httpStatus: 500, expose: false },
    ),
  closed: () =>
    new AppError('AUDIT_UNAVAILABLE', 'the audit trail is closed (the appliance is stopping); the action was refused', {
      httpStatus: 503,
      expose: true,
    }),
};

/** A short, secret-free description of a database error: its code (SQLITE_FULL, 25006…) or class. */
export function describeDbError(e: unknown): string {
  const o = e as { code?: unknown; message?: unknown } | undefined;
  if (o && typeof o.code === 'string' && o.code) return o.code;
  if (o && typeof o.message === 'string') return o.message.slice(0, 120);
  return 'unknown error';
}
