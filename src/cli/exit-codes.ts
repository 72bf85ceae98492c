import { isAppError } from '../shared/errors.js';

/**
 * The exit codes of `coffre`, stable for scripts (docs/cli.md "Exit codes"). restic's habit:
 * a script branches on the kind of failure without parsing text.
 */
export const EXIT = {
  ok: 0,
  /** the operation failed (none of the kinds below) */
  failed: 1,
  /** usage or configuration: unknown flag, bad value, missing data dir, refused input */
  usage: 2,
  /** partial: some targets failed, others succeeded */
  partial: 3,
  /** authentication or permission refused */
  auth: 4,
  /** busy or locked: another run holds the lease, the database is locked, a rate limit */
  busy: 5,
  /** unreachable: network, appliance, HSM, backup target */
  unreachable: 6,
  /** integrity: verification failed, tampering detected, digest mismatch */
  integrity: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Error codes whose kind is known, whatever HTTP status carried them. */
const BY_CODE: Record<string, ExitCode> = {
  UNAUTHENTICATED: EXIT.auth,
  FORBIDDEN: EXIT.auth,
  REQUEST_SELF_APPROVAL: EXIT.auth,
  INVALID_CREDENTIALS: EXIT.auth,
  INVALID_CODE: EXIT.auth,
  CHALLENGE_INVALID: EXIT.auth,
  CSRF: EXIT.auth,
  JOB_BUSY: EXIT.busy,
  BACKUP_BUSY: EXIT.busy,
  DB_BUSY: EXIT.busy,
  RATE_LIMITED: EXIT.busy,
  KEYS_UNAVAILABLE: EXIT.unreachable,
  UNREACHABLE: EXIT.unreachable,
  TARGET_UNREACHABLE: EXIT.unreachable,
  TARGET_STALLED: EXIT.unreachable,
  TARGET_AUTH: EXIT.unreachable,
  TARGET_HOST_KEY: EXIT.unreachable,
  DB_UNAVAILABLE: EXIT.unreachable,
  STORAGE_UNAVAILABLE: EXIT.unreachable,
  SYSLOG_UNREACHABLE: EXIT.unreachable,
  DELIVERY_FAILED: EXIT.unreachable,
  INTEGRITY: EXIT.integrity,
  KEYS_INTEGRITY: EXIT.integrity,
  AUDIT_TAMPERED: EXIT.integrity,
  BACKUP_INTEGRITY: EXIT.integrity,
  BACKUP_VERIFY_FAILED: EXIT.integrity,
  DIGEST_MISMATCH: EXIT.integrity,
  DB_CORRUPT: EXIT.integrity,
};

/** A run that reports per target (`details.targets[].ok`) and failed at some but not all. */
function isPartial(details: unknown): boolean {
  const targets = (details as { targets?: unknown } | null | undefined)?.targets;
  if (!Array.isArray(targets)) return false;
  const oks = targets.map((t) => (t as { ok?: unknown }).ok === true);
  return oks.includes(true) && oks.includes(false);
}

/** The exit code for an error: usage stays 2; otherwise the kind of failure, else 1. */
export function exitCodeFor(e: unknown): ExitCode {
  if (!isAppError(e)) return EXIT.failed;
  if (e.exitCode === EXIT.usage) return EXIT.usage;
  if (isPartial(e.details)) return EXIT.partial;
  const known = BY_CODE[e.code];
  if (known !== undefined) return known;
  if (e.httpStatus === 401 || e.httpStatus === 403) return EXIT.auth;
  if (e.httpStatus === 429 || /_(BUSY|LOCKED)$/.test(e.code)) return EXIT.busy;
  if (e.httpStatus === 502 || e.httpStatus === 503 || e.httpStatus === 504) return EXIT.unreachable;
  return EXIT.failed;
}
