import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { s3Status, s3Why } from '../../shared/s3.js';
import { backupErrors } from '../errors.js';
import { pathSegments, type BackupTarget, type TargetEntry } from './types.js';

export interface S3TargetOptions {
  bucket: string;
  /** `''` or `a/b/`: every key starts with it */
  prefix: string;
  /** `s3://bucket/prefix at host` (no credentials) */
  display: string;
  /**
   * Object Lock: the date until which an object written (or renamed) to `path` is retained in
   * compliance mode, or null for an object that is not locked (temporary names, the marker).
   */
  retainUntil: (path: string) => Date | null;
  /** the capacity granted to this target (its quota at the store), for `space`; null: unknown */
  quotaBytes: number | null;
  partSize?: number;
}

/**
 * A bucket (and prefix) of an S3-compatible object store with Object Lock in compliance mode.
 *
 * - Directories are key prefixes; `put` is atomic by nature (a multipart upload is invisible until
 *   completed, and aborted when it fails), written with `If-None-Match: *` after a check that the
 *   name is free, and its size read back from the store.
 * - Objects whose path `retainUntil` maps to a date (a backup's files, renamed into place) carry
 *   that retention in COMPLIANCE mode (set by the copy that renames them, and again on the new
 *   version for stores that ignore a copy's lock headers): until then no credentials, the appliance's included, can delete that version, shorten
 *   its retention or lift the lock. A `put` on the same key with other credentials can only stack
 *   a newer version above it; the retained one stays as written.
 * - `remove` deletes every version of every key under the path (no delete markers left behind);
 *   a version still retained fails TARGET_LOCKED and the rest of that path stays as it was.
 * - `rename` copies each object (server side) to its new key, with the new key's retention, then
 *   removes the source; it never replaces an existing name.
 * - Unfinished multipart uploads under a removed path are aborted (a writer killed mid-upload).
 */
export class S3Target implements BackupTarget {
  readonly display: string;
  constructor(
    private readonly s3: S3Client,
    private readonly o: S3TargetOptions,
  ) {
    this.display = o.display;
  }

  private key(p: string, allowRoot = false): string {
    const segs = pathSegments(p, allowRoot);
    return this.o.prefix + segs.join('/');
  }

  private fail(e: unknown, p: string): never {
    if ((e as { code?: string }).code?.startsWith('TARGET_')) throw e;
    const status = s3Status(e);
    const why = s3Why(e);
    if (status === 403 && /object lock/i.test((e as Error).message ?? '')) throw backupErrors.locked(this.display, p);
    if (status === 403 || status === 401) throw backupErrors.auth(this.display, why);
    if (status === 404) throw backupErrors.notFound(this.display, p);
    if (status === 412 || status === 409) throw backupErrors.exists(this.display, p);
    if (status === undefined || status >= 500) throw backupErrors.unreachable(this.display, `${why} on ${p}`);
    throw backupErrors.io(this.display, `${why} on ${p}`);
  }

  private async head(key: string): Promise<number | null> {
    try {
      return (await this.s3.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: key }))).ContentLength ?? 0;
    } catch (e) {
      if (s3Status(e) === 404) return null;
      throw e;
    }
  }

  private lockParams(p: string) {
    const until = this.o.retainUntil(p);
    return until ? { ObjectLockMode: 'COMPLIANCE' as const, ObjectLockRetainUntilDate: until } : {};
  }

  async put(p: string, data: Buffer | Readable): Promise<{ size: number }> {
    const key = this.key(p);
    let sent = 0;
    try {
      if ((await this.head(key)) !== null || (await this.keysUnder(`${key}/`, 1)).length)
        throw backupErrors.exists(this.display, p);
      let body: Buffer | Readable = data;
      if (Buffer.isBuffer(data)) sent = data.length;
      else {
        const counted = new (await import('node:stream')).PassThrough({ highWaterMark: 1 << 20 });
        counted.on('data', (c: Buffer) => (sent += c.length));
        data.on('error', (e) => counted.destroy(e));
        data.pipe(counted);
        body = counted;
      }
      const up = new Upload({
        client: this.s3,
        params: { Bucket: this.o.bucket, Key: key, Body: body, IfNoneMatch: '*', ...this.lockParams(p) },
        partSize: this.o.partSize ?? 8 * 1024 * 1024,
        queueSize: 2,
        leavePartsOnError: false,
      });
      await up.done();
      const held = await this.head(key);
      if (held !== sent)
        throw backupErrors.io(this.display, `size check failed for ${p}: sent ${sent} bytes, the store holds ${held}`);
      return { size: sent };
    } catch (e) {
      if (!Buffer.isBuffer(data)) data.destroy();
      this.fail(e, p);
    }
  }

  async get(p: string): Promise<Readable> {
    const key = this.key(p);
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key }));
      return r.Body as Readable;
    } catch (e) {
      this.fail(e, p);
    }
  }

  /** Keys (with sizes) under a key prefix, at most `limit`. */
  private async keysUnder(prefix: string, limit = Infinity): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.o.bucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : {}),
          ...(limit < 1000 ? { MaxKeys: limit } : {}),
        }),
      );
      for (const c of r.Contents ?? []) out.push({ key: c.Key!, size: c.Size ?? 0 });
      token = r.IsTruncated && out.length < limit ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async list(dir: string): Promise<TargetEntry[]> {
    const base = dir === '' ? this.o.prefix : `${this.key(dir)}/`;
    try {
      const out = new Map<string, TargetEntry>();
      let token: string | undefined;
      do {
        const r = await this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.o.bucket,
            Prefix: base,
            Delimiter: '/',
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const c of r.Contents ?? []) {
          const name = c.Key!.slice(base.length);
          if (name) out.set(name, { name, type: 'file', size: c.Size ?? 0 });
        }
        for (const cp of r.CommonPrefixes ?? []) {
          const name = cp.Prefix!.slice(base.length, -1);
          if (name && !out.has(name)) out.set(name, { name, type: 'dir', size: 0 });
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
    } catch (e) {
      this.fail(e, dir);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.key(from);
    const b = this.key(to);
    try {
      if ((await this.head(b)) !== null || (await this.keysUnder(`${b}/`, 1)).length)
        throw backupErrors.exists(this.display, to);
      const single = await this.head(a);
      const moves =
        single !== null
          ? [{ src: a, dst: b, path: to }]
          : (await this.keysUnder(`${a}/`)).map((k) => ({
              src: k.key,
              dst: b + k.key.slice(a.length),
              path: to + k.key.slice(a.length),
            }));
      if (!moves.length) throw backupErrors.notFound(this.display, from);
      for (const m of moves) {
        const lock = this.lockParams(m.path);
        const copied = await this.s3.send(
          new CopyObjectCommand({
            Bucket: this.o.bucket,
            Key: m.dst,
            CopySource: `${this.o.bucket}/${encodeURIComponent(m.src).replace(/%2F/g, '/')}`,
            ...lock,
          }),
        );
        // some stores (Ceph RGW 16) ignore the lock headers of a copy: the retention is set on the new version too
        if (lock.ObjectLockMode)
          await this.s3.send(
            new PutObjectRetentionCommand({
              Bucket: this.o.bucket,
              Key: m.dst,
              ...(copied.VersionId ? { VersionId: copied.VersionId } : {}),
              Retention: { Mode: lock.ObjectLockMode, RetainUntilDate: lock.ObjectLockRetainUntilDate },
            }),
          );
      }
      await this.removeKeys(single !== null ? a : `${a}/`, single !== null);
    } catch (e) {
      this.fail(e, `${from} → ${to}`);
    }
  }

  /** Deletes every version of `key` (exact) or of every key under the prefix `key`. */
  private async removeKeys(key: string, exact: boolean): Promise<void> {
    let km: string | undefined;
    let vm: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectVersionsCommand({
          Bucket: this.o.bucket,
          Prefix: key,
          ...(km ? { KeyMarker: km, VersionIdMarker: vm } : {}),
        }),
      );
      for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])]) {
        if (exact && v.Key !== key) continue;
        await this.s3.send(
          new DeleteObjectCommand({
            Bucket: this.o.bucket,
            Key: v.Key!,
            ...(v.VersionId && v.VersionId !== 'null' ? { VersionId: v.VersionId } : {}),
          }),
        );
      }
      km = r.IsTruncated ? r.NextKeyMarker : undefined;
      vm = r.NextVersionIdMarker;
    } while (km);
    if (exact) return;
    const ups = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.o.bucket, Prefix: key }));
    for (const u of ups.Uploads ?? [])
      await this.s3.send(
        new AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key: u.Key!, UploadId: u.UploadId! }),
      );
  }

  async remove(p: string): Promise<void> {
    const key = this.key(p);
    try {
      await this.removeKeys(key, true);
      await this.removeKeys(`${key}/`, false);
    } catch (e) {
      this.fail(e, p);
    }
  }

  async space(): Promise<{ free: number; total: number } | null> {
    if (this.o.quotaBytes === null) return null;
    try {
      const used = (await this.keysUnder(this.o.prefix)).reduce((s, k) => s + k.size, 0);
      return { free: Math.max(0, this.o.quotaBytes - used), total: this.o.quotaBytes };
    } catch (e) {
      this.fail(e, '');
    }
  }

  async close(): Promise<void> {
    this.s3.destroy();
  }
}
