import path from 'node:path';
import type { BackupConfig } from '../config/sections/backup.js';
import { backupErrors } from './errors.js';
import { s3Client, s3Display } from '../shared/s3.js';
import { backupIdTime, isBackupId } from './format.js';
import { DAY_MS, RETENTION_DAYS } from './retention.js';
import { PathTarget } from './targets/path.js';
import { S3Target } from './targets/s3.js';
import { formatS3Url, parseS3Url } from './targets/s3-url.js';
import { parseSftpUrl, sftpFromUrl } from './targets/sftp.js';
import type { BackupTarget, TargetSpec } from './targets/types.js';
import { BandwidthLimitedTarget, RetryingTarget, type RetryOptions } from './targets/wrappers.js';

/**
 * How a target is opened besides its spec: plain data, so the same object also crosses to the
 * backup engine's worker thread (./engine). Built from the configuration by `targetOptions` only.
 */
export interface TargetOptions {
  connectTimeoutMs?: number;
  /** remote targets: requests in flight and no answer for this long fail with TARGET_STALLED */
  stallTimeoutMs?: number;
  /** uploads together and downloads together are paced to this rate */
  bandwidthLimitBytesPerSec?: number;
  retry?: { retries: number; baseMs: number };
}

/** The one function that turns `backup.*` settings into target options, for every path that opens a target. */
export function targetOptions(
  cfg: Pick<BackupConfig, 'connectTimeoutMs' | 'stallTimeoutMs' | 'bandwidthLimitKiBps' | 'retries' | 'retryBaseMs'>,
): TargetOptions {
  return {
    connectTimeoutMs: cfg.connectTimeoutMs,
    stallTimeoutMs: cfg.stallTimeoutMs,
    ...(cfg.bandwidthLimitKiBps > 0 ? { bandwidthLimitBytesPerSec: cfg.bandwidthLimitKiBps * 1024 } : {}),
    retry: { retries: cfg.retries, baseMs: cfg.retryBaseMs },
  };
}

/** How the backup engine's worker reaches a target: its spec, the secrets it names (read here), the options. */
export interface TargetRef {
  spec: TargetSpec;
  /** file path → content, for password files */
  secrets: Record<string, string>;
  options: TargetOptions;
}

export function targetRef(
  spec: TargetSpec,
  options: TargetOptions,
  readSecret: (file: string, what: string) => string,
): TargetRef {
  return {
    spec,
    secrets: spec.passwordFile
      ? { [spec.passwordFile]: readSecret(spec.passwordFile, 'backup target password file') }
      : {},
    options,
  };
}

/** Opens a target the backup engine was handed (secrets come from the ref, never from files). */
export function openTargetRef(r: TargetRef): BackupTarget {
  return openTarget(r.spec, {
    ...r.options,
    readSecret: (file) => {
      const v = r.secrets[file];
      if (v === undefined) throw backupErrors.usage(`internal: secret ${file} was not passed to the backup engine`);
      return v;
    },
  });
}

export interface OpenTargetOptions extends Omit<TargetOptions, 'retry'> {
  readSecret: (file: string, what: string) => string;
  retry?: RetryOptions;
}

/**
 * The one place that maps a target `type` to an implementation, and wraps it with
 * the configured behaviour (bandwidth limit inside, retries outside: each retry is paced too).
 */

export function openTarget(spec: TargetSpec, o: OpenTargetOptions): BackupTarget {
  let t: BackupTarget;
  switch (spec.type) {
    case 'sftp':
      if (!spec.hostKey) throw backupErrors.usage('an SFTP target needs a pinned host key (--host-key)');
      t = sftpFromUrl(spec.url, {
        hostKey: spec.hostKey,
        identityFile: spec.identityFile ?? null,
        passwordFile: spec.passwordFile ?? null,
        readSecret: o.readSecret,
        ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
        ...(o.stallTimeoutMs ? { stallTimeoutMs: o.stallTimeoutMs } : {}),
      });
      break;
    case 'path':
      t = new PathTarget(pathFromFileUrl(spec.url));
      break;
    case 's3': {
      if (!spec.passwordFile) throw backupErrors.usage('an S3 target needs --password-file (its secret access key)');
      const u = parseS3Url(spec.url);
      t = new S3Target(
        s3Client({
          endpoint: u.endpoint,
          region: u.region,
          forcePathStyle: true,
          accessKeyId: u.accessKeyId,
          secretAccessKey: o.readSecret(spec.passwordFile, 'S3 target secret key file'),
          ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
          ...(o.stallTimeoutMs ? { idleTimeoutMs: o.stallTimeoutMs } : {}),
        }),
        {
          bucket: u.bucket,
          prefix: u.prefix,
          display: s3Display(u, u.bucket, u.prefix),
          retainUntil: backupRetainUntil,
          quotaBytes: u.quotaBytes,
        },
      );
      break;
    }
    default:
      throw backupErrors.usage(
        `unknown target type ${String((spec as { type: unknown }).type)}`,
        'use --type sftp, path or s3',
      );
  }
  if (o.bandwidthLimitBytesPerSec) t = new BandwidthLimitedTarget(t, o.bandwidthLimitBytesPerSec);
  if (o.retry && o.retry.retries > 0) t = new RetryingTarget(t, o.retry);
  return t;
}

/** `file:///mnt/secondary` → `/mnt/secondary` */
export function pathFromFileUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw backupErrors.usage(
      `not a URL: ${JSON.stringify(url)}`,
      'use file:///absolute/dir or sftp://user@host:port/dir',
    );
  }
  if (u.protocol !== 'file:' || (u.host && u.host !== 'localhost'))
    throw backupErrors.usage(`expected a file:/// URL, got ${JSON.stringify(url)}`);
  const p = decodeURIComponent(u.pathname).replace(/\/+$/, '');
  if (!p.startsWith('/') || p === '' || path.normalize(p) !== p)
    throw backupErrors.usage(`the directory of ${JSON.stringify(url)} must be absolute and normalised`);
  return p;
}

/** Object Lock keeps a backup's files this long before its slot expires: a weekly slot moves by an hour at DST changes, and runs start late. */
export const LOCK_MARGIN_MS = 3 * 3_600_000;

/**
 * Object Lock policy of S3 targets: the files of a backup (`<backup id>/…`, written there by the
 * rename that completes it) are retained until its weekday slot expires, seven days after the
 * backup's time less LOCK_MARGIN_MS, so the next backup of that slot can destroy it on time.
 * Temporary names and the target's marker are not locked.
 */
export function backupRetainUntil(p: string): Date | null {
  const first = p.split('/')[0]!;
  return isBackupId(first) ? new Date(backupIdTime(first) + RETENTION_DAYS * DAY_MS - LOCK_MARGIN_MS) : null;
}

/** Checks a URL for its type without connecting (CLI `target add`). Returns the normalised URL. */
export function normaliseTargetUrl(type: TargetSpec['type'], url: string): string {
  if (type === 'path') return `file://${pathFromFileUrl(url)}`;
  if (type === 'sftp') {
    const u = parseSftpUrl(url);
    const host = u.host.includes(':') ? `[${u.host}]` : u.host;
    return `sftp://${encodeURIComponent(u.username)}@${host}:${u.port}${u.dir}`;
  }
  if (type === 's3') return formatS3Url(parseS3Url(url));
  throw backupErrors.usage(`unknown target type ${String(type)}`, 'use --type sftp, path or s3');
}
