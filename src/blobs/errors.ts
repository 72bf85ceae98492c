import { AppError } from '../shared/errors.js';

/** Errors of the blob format and streams (stable codes, shared with the keys module's: docs/errors.md). */
export const blobErrors = {
  /** a chunk, the header or the end tag failed authentication: never retried, nothing released */
  integrity: (message: string, cause?: unknown) =>
    new AppError('KEYS_INTEGRITY', message, {
      httpStatus: 500,
      expose: true,
      exitCode: 1,
      hint: 'the stored data was altered or belongs elsewhere; restore it from a backup',
      ...(cause === undefined ? {} : { cause }),
    }),
  usage: (message: string, hint?: string) =>
    new AppError('USAGE', message, { httpStatus: 400, exitCode: 2, ...(hint ? { hint } : {}) }),
};
