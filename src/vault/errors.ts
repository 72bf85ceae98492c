import { AppError } from '../shared/errors.js';

/** The vault's errors, with stable codes (docs/errors.md). */
export const vaultErrors = {
  invalidName: (what: string, why: string) =>
    new AppError('INVALID_NAME', `${what} ${why}`, {
      httpStatus: 400,
      exitCode: 2,
      hint: 'names are 1 to 255 characters of valid UTF-8, without / \\ NUL or control characters, and not "." or ".."',
    }),
  invalidInput: (message: string) => new AppError('INVALID_INPUT', message, { httpStatus: 400, exitCode: 2 }),
  workspaceNotFound: () =>
    new AppError('WORKSPACE_NOT_FOUND', 'workspace not found', {
      httpStatus: 404,
      hint: 'check the workspace id; you must be a member of it',
    }),
  documentNotFound: () => new AppError('DOCUMENT_NOT_FOUND', 'document not found', { httpStatus: 404 }),
  versionNotFound: () => new AppError('VERSION_NOT_FOUND', 'version not found', { httpStatus: 404 }),
  folderNotFound: () => new AppError('FOLDER_NOT_FOUND', 'folder not found', { httpStatus: 404 }),
  folderNotEmpty: () =>
    new AppError('FOLDER_NOT_EMPTY', 'folder is not empty', {
      httpStatus: 409,
      hint: 'move or delete what it holds first',
    }),
  folderCycle: () => new AppError('FOLDER_CYCLE', 'a folder cannot be moved inside itself', { httpStatus: 409 }),
  inTrash: () =>
    new AppError('DOCUMENT_IN_TRASH', 'document is in the trash', { httpStatus: 409, hint: 'restore it first' }),
  notInTrash: () => new AppError('DOCUMENT_NOT_IN_TRASH', 'document is not in the trash', { httpStatus: 409 }),
  archived: () => new AppError('WORKSPACE_ARCHIVED', 'workspace is archived (read-only)', { httpStatus: 409 }),
  forbidden: (need: string) =>
    new AppError('FORBIDDEN', `this needs the ${need} role in the workspace`, { httpStatus: 403 }),
  tooLarge: (max: number) =>
    new AppError('UPLOAD_TOO_LARGE', `upload larger than the limit of ${max} bytes`, {
      httpStatus: 413,
      hint: 'the limit is vault.maxUploadBytes in the configuration',
    }),
  quotaExceeded: (quota: number, used: number) =>
    new AppError('QUOTA_EXCEEDED', `workspace quota exceeded (${used} of ${quota} bytes used)`, {
      httpStatus: 413,
      hint: 'empty the trash, delete versions or ask an administrator to raise the quota',
    }),
  lengthMismatch: (declared: number, got: number) =>
    new AppError('BODY_LENGTH_MISMATCH', `body of ${got} bytes does not match Content-Length ${declared}`, {
      httpStatus: 400,
    }),
  digestMismatch: () =>
    new AppError('DIGEST_MISMATCH', 'uploaded content does not match the SHA-256 the client announced', {
      httpStatus: 400,
    }),
  incomplete: () =>
    new AppError('UPLOAD_INCOMPLETE', 'the upload ended before its body was complete', { httpStatus: 400 }),
  idempotencyKeyReused: () =>
    new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for another upload target', {
      httpStatus: 409,
      hint: 'send a fresh key for each new upload',
    }),
  unsupportedMedia: () =>
    new AppError('UNSUPPORTED_MEDIA_TYPE', 'upload as application/octet-stream or multipart/form-data', {
      httpStatus: 415,
    }),
  rangeNotSatisfiable: (size: number) =>
    new AppError('RANGE_NOT_SATISFIABLE', `range outside the content of ${size} bytes`, {
      httpStatus: 416,
      details: { size },
    }),
  integrity: () =>
    new AppError('INTEGRITY', 'stored content failed its integrity check; an alert was raised', {
      httpStatus: 500,
      expose: true,
    }),
};
