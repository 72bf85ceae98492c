import path from 'node:path';
import type { BackupConfig } from '../config/sections/backup.js';
import { backupErrors } from './errors.js';
import { PathTarget } from './targets/path.js';
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
    default:
      throw backupErrors.usage(
        `unknown target type ${String((spec as { type: unknown }).type)}`,
        'use --type sftp or --type path',
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

/** Checks a URL for its type without connecting (CLI `target add`). Returns the normalised URL. */
export function normaliseTargetUrl(type: TargetSpec['type'], url: string): string {
  if (type === 'path') return `file://${pathFromFileUrl(url)}`;
  if (type === 'sftp') {
    const u = parseSftpUrl(url);
    const host = u.host.includes(':') ? `[${u.host}]` : u.host;
    return `sftp://${encodeURIComponent(u.username)}@${host}:${u.port}${u.dir}`;
  }
  throw backupErrors.usage(`unknown target type ${String(type)}`, 'use --type sftp or --type path');
}
