import { AppError } from '../shared/errors.js';

/** The records module's errors, with stable codes (docs/errors.md). */
export const recordsErrors = {
  invalidInput: (message: string) => new AppError('INVALID_INPUT', message, { httpStatus: 400, exitCode: 2 }),
  documentNotFound: () => new AppError('DOCUMENT_NOT_FOUND', 'document not found', { httpStatus: 404 }),
  folderNotFound: () => new AppError('FOLDER_NOT_FOUND', 'folder not found', { httpStatus: 404 }),
  tooLarge: (max: number) =>
    new AppError('REPORT_TOO_LARGE', `the folder holds more than ${max} documents and folders`, {
      httpStatus: 413,
      hint: 'report on its sub-folders one by one',
    }),
  retentionActive: (retainUntil: string | null) =>
    new AppError(
      'RETENTION_ACTIVE',
      retainUntil
        ? `under a retention policy until ${retainUntil}`
        : 'under a retention policy that the destination does not keep as long',
      {
        httpStatus: 409,
        details: { retainUntil },
        hint: 'nobody can trash, destroy or move it out of its retention before term',
      },
    ),
  legalHold: (holds: string[]) =>
    new AppError('LEGAL_HOLD', 'under a legal hold', {
      httpStatus: 409,
      details: { holds },
      hint: 'a hold is released only by two people holding the records permission',
    }),
  requestNotFound: () => new AppError('REQUEST_NOT_FOUND', 'request not found', { httpStatus: 404 }),
  requestClosed: (state: string) => new AppError('REQUEST_CLOSED', `the request is ${state}`, { httpStatus: 409 }),
  selfApproval: () =>
    new AppError('SECOND_PERSON_REQUIRED', 'the person who asked for a change cannot approve it', {
      httpStatus: 403,
      hint: 'another person holding the records permission must approve it',
    }),
  needsUser: () =>
    new AppError(
      'SECOND_PERSON_REQUIRED',
      'records changes are asked for and approved by named users, not local or job actors',
      { httpStatus: 403 },
    ),
  holdNotFound: () => new AppError('HOLD_NOT_FOUND', 'legal hold not found or already released', { httpStatus: 404 }),
  workspaceNotFound: () => new AppError('WORKSPACE_NOT_FOUND', 'workspace not found', { httpStatus: 404 }),
  certificateNotFound: () =>
    new AppError('CERTIFICATE_NOT_FOUND', 'destruction certificate not found', { httpStatus: 404 }),
};
