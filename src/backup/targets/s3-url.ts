import { backupErrors } from '../errors.js';

/** What an S3 target URL says: `s3://KEYID@host[:port]/bucket[/prefix][?region=R&quotaGiB=N]` (`s3+http://` on loopback tests only). */
export interface S3TargetUrl {
  endpoint: string;
  accessKeyId: string;
  bucket: string;
  /** `''` or `a/b/` */
  prefix: string;
  region: string;
  quotaBytes: number | null;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function parseS3Url(url: string): S3TargetUrl {
  const hint = 'use s3://ACCESS_KEY_ID@host:port/bucket/prefix?region=R&quotaGiB=N (the secret key in --password-file)';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw backupErrors.usage(`not a URL: ${JSON.stringify(url)}`, hint);
  }
  if (u.protocol !== 's3:' && u.protocol !== 's3+http:') throw backupErrors.usage('expected an s3:// URL', hint);
  if (u.password) throw backupErrors.usage('an S3 target URL never holds the secret key', hint);
  const accessKeyId = decodeURIComponent(u.username);
  if (!accessKeyId || !u.hostname)
    throw backupErrors.usage('an S3 target URL needs the access key id and the host', hint);
  const [bucket = '', ...rest] = decodeURIComponent(u.pathname)
    .replace(/^\/+|\/+$/g, '')
    .split('/');
  if (!BUCKET.test(bucket)) throw backupErrors.usage(`invalid bucket name ${JSON.stringify(bucket)}`, hint);
  if (rest.some((s) => !SEGMENT.test(s) || s === '.' || s === '..'))
    throw backupErrors.usage('invalid prefix in the S3 target URL', hint);
  for (const k of u.searchParams.keys())
    if (k !== 'region' && k !== 'quotaGiB') throw backupErrors.usage(`unknown S3 URL parameter ${k}`, hint);
  const quota = u.searchParams.get('quotaGiB');
  if (quota !== null && !/^[1-9]\d{0,6}$/.test(quota))
    throw backupErrors.usage('quotaGiB must be a whole number of GiB', hint);
  return {
    endpoint: `${u.protocol === 's3:' ? 'https' : 'http'}://${u.host}`,
    accessKeyId,
    bucket,
    prefix: rest.length ? `${rest.join('/')}/` : '',
    region: u.searchParams.get('region') ?? 'us-east-1',
    quotaBytes: quota === null ? null : Number(quota) * 1024 ** 3,
  };
}

/** The URL in its one normal form (what the catalogue stores). */
export function formatS3Url(t: S3TargetUrl): string {
  const e = new URL(t.endpoint);
  const q = new URLSearchParams({
    region: t.region,
    ...(t.quotaBytes ? { quotaGiB: String(t.quotaBytes / 1024 ** 3) } : {}),
  });
  return `${e.protocol === 'https:' ? 's3' : 's3+http'}://${encodeURIComponent(t.accessKeyId)}@${e.host}/${t.bucket}/${t.prefix}?${q}`;
}
