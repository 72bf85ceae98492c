import { AppError } from '../shared/errors.js';

export const storageErrors = {
  exists: (id: string) =>
    new AppError('BLOB_EXISTS', `blob ${id} already exists (blobs are write-once)`, { httpStatus: 409, expose: true }),
  notFound: (id: string) => new AppError('BLOB_NOT_FOUND', `blob ${id} not found`, { httpStatus: 404, expose: true }),
  // the id is not quoted: it may come from a damaged database or a caller's input
  badId: (id: string) =>
    new AppError('BLOB_ID_INVALID', `invalid blob id (${id.length} characters; 1 to 128 of A-Z a-z 0-9 _ - expected)`, {
      httpStatus: 400,
      expose: true,
      exitCode: 2,
    }),
  badRange: (msg: string) => new AppError('RANGE_NOT_SATISFIABLE', msg, { httpStatus: 416, expose: true }),
  io: (msg: string, cause?: unknown) =>
    new AppError('STORAGE_UNAVAILABLE', msg, {
      httpStatus: 503,
      expose: false,
      hint: 'check the storage directory (space, permissions)',
      cause,
    }),
};

/** Blob ids: 1..128 of [A-Za-z0-9_-]; never a path. */
export const BLOB_ID = /^[A-Za-z0-9_-]{1,128}$/;
