import { AppError } from '../shared/errors.js';

/**
 * Errors of the keys module. Messages name the CKR code and the config key to check; they never
 * contain a PIN, a key or key material.
 */
export const keysErrors = {
  /** HSM missing, locked, down, or misconfigured: 503, CLI exit 1 (invariant 3: fail closed). */
  unavailable: (message: string, hint = 'check the HSM and the keys section of config.json', cause?: unknown) =>
    new AppError('KEYS_UNAVAILABLE', message, {
      httpStatus: 503,
      expose: true,
      exitCode: 1,
      hint,
      ...(cause === undefined ? {} : { cause }),
    }),
  /** Ciphertext or a wrapped key failed authentication: never retried, nothing released. */
  integrity: (message: string, cause?: unknown) =>
    new AppError('KEYS_INTEGRITY', message, {
      httpStatus: 500,
      expose: true,
      exitCode: 1,
      hint: 'the stored data was altered or belongs elsewhere; restore it from a backup',
      ...(cause === undefined ? {} : { cause }),
    }),
  /** A data key that was destroyed (crypto-shredding) or never existed. */
  dataKeyGone: (keyId: string) =>
    new AppError('DATA_KEY_NOT_FOUND', `data key ${keyId} does not exist (destroyed or never created)`, {
      httpStatus: 410,
      expose: true,
      exitCode: 1,
    }),
  /** A named HSM key that was destroyed (crypto-shredding) or never existed. */
  keyDestroyed: (keyName: string) =>
    new AppError('KEY_DESTROYED', `the HSM holds no key ${keyName} (destroyed, or never created here)`, {
      httpStatus: 410,
      expose: true,
      exitCode: 1,
    }),
  usage: (message: string, hint?: string) =>
    new AppError('USAGE', message, { httpStatus: 400, exitCode: 2, ...(hint ? { hint } : {}) }),
};
