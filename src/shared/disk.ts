import fs from 'node:fs';
import { AppError } from './errors.js';

/** Bytes an unprivileged writer can still use on the file system holding `dir` (undefined if unknown). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Errors of a file system (or a database file) that ran out of space. */
export const isNoSpace = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
};

/**
 * `STORAGE_FULL` (507): which store, where, and how much space is left. Nothing was stored by the
 * refused operation (the caller's own clean-up guarantees it).
 */
export function storageFull(what: 'blobs' | 'database' | 'scratch', dir: string, cause?: unknown): AppError {
  const free = freeBytes(dir);
  const code = String((cause as { code?: unknown } | undefined)?.code ?? 'ENOSPC');
  return new AppError(
    'STORAGE_FULL',
    `no space left for the ${what} in ${dir} (${code}; ${free === undefined ? 'free space unknown' : `${free} bytes free`}); nothing was stored`,
    {
      httpStatus: 507,
      expose: true,
      hint: 'free space on that file system or grow it; the appliance resumes by itself once there is room',
      details: { store: what, path: dir, freeBytes: free ?? null },
      cause,
    },
  );
}
