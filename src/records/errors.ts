import { AppError } from '../shared/errors.js';

/** The records module's errors, with stable codes (docs/errors.md). */
export const recordsErrors = {
  invalidInput: (message: string) => new AppError('INVALID_INPUT', message, { httpStatus: 400, exitCode: 2 }),
  documentNotFound: () => new AppError('DOCUMENT_NOT_FOUND', 'document not found', { httpStatus: 404 }),
  folderNotFound: () => new AppError('FOLDER_NOT_FOUND', 'folder not found', { httpStatus: 404 }),
  tooLarge: (max: number) => new AppError('REPORT_TOO_LARGE', `the folder holds more than ${max} documents and folders`, { httpStatus: 413, hint: 'report on its sub-folders one by one' }),
};
