import { AppError } from '../shared/errors.js';

/** Errors of the seals module (docs/errors.md). */
export const sealsErrors = {
  certInvalid: (why: string) =>
    new AppError('SEAL_CERT_INVALID', `the certificate cannot be used for the sealing key: ${why}`, {
      httpStatus: 400,
      expose: true,
      exitCode: 2,
    }),
  receiptNotFound: () =>
    new AppError(
      'RECEIPT_NOT_FOUND',
      'no deposit receipt for this version (deposited before receipts existed, or no such version)',
      { httpStatus: 404, expose: true, exitCode: 1 },
    ),
  signatureInvalid: (what: string) =>
    new AppError('SEAL_INVALID', `${what} does not verify against the sealing certificate`, {
      httpStatus: 422,
      expose: true,
      exitCode: 1,
    }),
};
