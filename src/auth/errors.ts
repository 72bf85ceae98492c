import { AppError } from '../shared/errors.js';

/** Identity errors with stable codes (docs/errors.md). Messages never hold a secret. */
export const authErrors = {
  /** the same answer for unknown user, wrong password, disabled and throttled account (B3) */
  invalidCredentials: () =>
    new AppError('INVALID_CREDENTIALS', 'invalid username or password', { httpStatus: 401, exitCode: 1 }),
  invalidCode: () => new AppError('INVALID_CODE', 'invalid or expired code', { httpStatus: 401, exitCode: 1 }),
  challengeInvalid: () =>
    new AppError('CHALLENGE_INVALID', 'the login attempt expired or was already used; sign in again', {
      httpStatus: 401,
      exitCode: 1,
    }),
  linkInvalid: () =>
    new AppError('LINK_INVALID', 'this link is invalid, expired or was already used', {
      httpStatus: 410,
      exitCode: 1,
      hint: 'ask an administrator for a new link',
    }),
  weakPassword: (reasons: string[]) =>
    new AppError('PASSWORD_REJECTED', `password refused: ${reasons.join('; ')}`, {
      httpStatus: 422,
      exitCode: 2,
      details: { reasons },
    }),
  usernameTaken: () =>
    new AppError('USERNAME_TAKEN', 'a user with this name, or with a name that looks the same, already exists', {
      httpStatus: 409,
      exitCode: 2,
    }),
  badUsername: (why: string) => new AppError('USAGE', `invalid username: ${why}`, { httpStatus: 400, exitCode: 2 }),
  badEmail: () => new AppError('USAGE', 'invalid e-mail address', { httpStatus: 400, exitCode: 2 }),
  badPhone: () =>
    new AppError('USAGE', 'invalid phone number (use the international form, e.g. +33612345678)', {
      httpStatus: 400,
      exitCode: 2,
    }),
  badRole: (role: string) =>
    new AppError('USAGE', `unknown role "${role}"`, {
      httpStatus: 400,
      exitCode: 2,
      hint: 'one of admin, backup-operator, auditor, member, records-manager',
    }),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError('RATE_LIMITED', 'too many attempts from this address; try again later', {
      httpStatus: 429,
      exitCode: 1,
      details: { retryAfterSeconds },
    }),
  /** B3: friction instead of refusal; asked before the password is evaluated, the same for existing and unknown accounts */
  proofRequired: (p: { challenge: string; bits: number; expiresAt: number }) =>
    new AppError(
      'PROOF_REQUIRED',
      'too many failed sign-ins for this account or from this address: solve the proof of work and sign in again',
      {
        httpStatus: 429,
        exitCode: 1,
        details: {
          retryAfterSeconds: 1,
          proof: {
            algorithm: 'sha256-leading-zero-bits',
            challenge: p.challenge,
            bits: p.bits,
            expiresAt: new Date(p.expiresAt).toISOString(),
          },
        },
      },
    ),
  /** M5: too many wrong codes for this user across challenges */
  mfaLocked: (retryAfterSeconds: number) =>
    new AppError(
      'MFA_LOCKED',
      'too many wrong codes: the second factor is locked for a while and the account holder has been told',
      { httpStatus: 429, exitCode: 1, details: { retryAfterSeconds } },
    ),
  /** M5: e-mail/SMS codes per user and per destination */
  codeRateLimited: (retryAfterSeconds: number) =>
    new AppError(
      'CODE_RATE_LIMITED',
      'too many codes were sent for this account or to this destination; try again later',
      { httpStatus: 429, exitCode: 1, details: { retryAfterSeconds } },
    ),
  csrf: () =>
    new AppError('CSRF', 'cross-site request refused (missing or wrong CSRF token or origin)', { httpStatus: 403 }),
  mfaUnavailable: (what: string) =>
    new AppError('MFA_UNAVAILABLE', `cannot deliver the code: ${what}`, {
      httpStatus: 503,
      exitCode: 1,
      hint: 'check the mail / sms configuration',
    }),
  currentPasswordWrong: () =>
    new AppError('INVALID_CREDENTIALS', 'the current password is wrong', { httpStatus: 403, exitCode: 1 }),
  erased: () =>
    new AppError('USER_ERASED', 'this user was erased: only their id remains', { httpStatus: 409, exitCode: 2 }),
};
