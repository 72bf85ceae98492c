import type { Readable } from 'node:stream';
import { backupErrors } from '../errors.js';

export interface TargetEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
}

/**
 * A place at a distant site that holds backups (restic's backend is the model).
 * Implementations: ./sftp.ts, ./path.ts, ./s3.ts (Object Lock); behaviour such as retries and bandwidth limits is added by
 * wrapping (./wrappers.ts). Every implementation passes test/contracts/backup-target.ts.
 *
 * The target is untrusted: it only ever holds OpenPGP ciphertext and HSM-wrapped keys, and the
 * caller checks everything it reads back. What callers may rely on:
 * - Paths are relative and `/`-separated; each segment matches [A-Za-z0-9._-]+ and is not `.`
 *   or `..`. Anything else fails TARGET_BAD_PATH before touching the target.
 * - `put` is atomic: the bytes go to a temporary name in the same directory, the size the target
 *   reports is checked against the bytes sent and flushed (fsync where the target can), then the
 *   file is renamed into place. A crash leaves at most a temporary name (starting with `.`), never
 *   a partial file under `path`. `put` never overwrites: TARGET_EXISTS. Parent directories are
 *   created.
 * - `rename` never replaces an existing entry (TARGET_EXISTS); it moves whole directories.
 * - `remove` deletes a file or a directory with everything under it; absent is not an error.
 * - `list` returns the entries directly under a directory (temporary names included), or [] when
 *   the directory is absent.
 * - Errors are BackupError with codes TARGET_UNREACHABLE (retryable), TARGET_STALLED
 *   (retryable: requests outstanding and nothing answered for the target's stall deadline),
 *   TARGET_AUTH, TARGET_HOST_KEY, TARGET_FULL, TARGET_IO, TARGET_EXISTS, TARGET_NOT_FOUND.
 * - No operation waits for ever: a lost connection or a closed session fails every request
 *   waiting on it at once, and a remote target fails a stalled one with TARGET_STALLED.
 * - The target reconnects by itself after a lost connection; `close` ends it.
 */
export interface BackupTarget {
  /** where it is, without credentials (display, logs, audit) */
  readonly display: string;
  put(path: string, data: Buffer | Readable): Promise<{ size: number }>;
  /** the chunks read are the caller's: fresh buffers the target keeps no reference to (the reader frees them once copied) */
  get(path: string): Promise<Readable>;
  list(dir: string): Promise<TargetEntry[]>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** free and total bytes where the target stores, or null when it cannot tell */
  space(): Promise<{ free: number; total: number } | null>;
  close(): Promise<void>;
}

/** How a target is registered (catalogue row `backup_targets`, minus the site). */
export type TargetType = 'sftp' | 'path' | 's3';

export interface TargetSpec {
  type: TargetType;
  /** `sftp://user@host[:port]/dir`, `file:///dir` or `s3://KEYID@host[:port]/bucket[/prefix]`; never holds a password */
  url: string;
  /** sftp: pinned host key fingerprint `SHA256:…` */
  hostKey?: string | null;
  /** sftp: private key file for public-key authentication */
  identityFile?: string | null;
  /** sftp: file holding the password (when no identity file); s3: the secret access key */
  passwordFile?: string | null;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Splits and checks a relative target path (see the contract above). */
export function pathSegments(p: string, allowRoot = false): string[] {
  if (p === '' && allowRoot) return [];
  const parts = p.split('/');
  if (!parts.length || parts.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) {
    throw backupErrors.badPath(p);
  }
  return parts;
}

/** A fresh temporary name next to `name` (hidden: starts with a dot). */
export const tempName = (name: string) => `.${name}.tmp-${Math.random().toString(36).slice(2, 10)}`;
