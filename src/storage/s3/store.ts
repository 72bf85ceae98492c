import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { BlobStore } from '../types.js';
import { BLOB_ID, storageErrors } from '../errors.js';
import { s3Status, s3Why } from '../../shared/s3.js';

export interface S3StoreOptions {
  bucket: string;
  /** `''` or `a/b/`: every key this store writes starts with it */
  prefix: string;
  partSize: number;
  queueSize: number;
  /** `s3://bucket/prefix at host` (no credentials): for messages */
  display: string;
}

/** Where claims live: a name no blob id can take (ids have no dot). */
const CLAIMS = '.claims/';

/**
 * BlobStore on an S3-compatible object store (AWS SDK v3; lib-storage for multipart uploads).
 *
 * The filesystem's temporary-name-then-rename rule, restated for S3:
 * - An object appears whole or not at all: a multipart upload is invisible until completed, and
 *   one that fails is aborted (lib-storage). One whose writer died (kill -9) stays invisible, and
 *   `collectTemp` aborts it once older than the grace period.
 * - Write-once: a writer first creates `<prefix>.claims/<id>` with `If-None-Match: *` (atomic on
 *   the server), then checks the blob is absent, uploads it (again `If-None-Match: *`, which
 *   servers that support conditional writes enforce on the final object too) and drops its claim.
 *   A concurrent writer of the same id loses at the claim: BLOB_EXISTS. Claims left by dead writers
 *   are removed by `collectTemp` like the uploads.
 * - Memory: about (queueSize + 2) × partSize per upload (parts in flight, one being filled and its
 *   copy), whatever the blob's size.
 * - Ranged reads are HTTP range requests (one encrypted chunk each for random access).
 */
export class S3BlobStore implements BlobStore {
  constructor(
    private readonly s3: S3Client,
    private readonly o: S3StoreOptions,
  ) {}

  private key(id: string): string {
    if (!BLOB_ID.test(id)) throw storageErrors.badId(id);
    return this.o.prefix + id;
  }

  private io(what: string, e: unknown): never {
    if ((e as { code?: string }).code?.startsWith('BLOB_')) throw e;
    throw storageErrors.io(`${this.o.display}: cannot ${what}: ${s3Why(e)}`);
  }

  async put(id: string, data: Readable): Promise<{ size: number }> {
    let key: string;
    try {
      key = this.key(id);
    } catch (e) {
      data.destroy();
      throw e;
    }
    const claim = this.o.prefix + CLAIMS + id;
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.o.bucket,
          Key: claim,
          Body: new Uint8Array(0),
          ContentLength: 0,
          IfNoneMatch: '*',
        }),
      );
    } catch (e) {
      data.destroy();
      if (isConflict(e)) throw storageErrors.exists(id);
      this.io(`write blob ${id}`, e);
    }
    try {
      if (await this.stat(id)) throw storageErrors.exists(id);
      let size = 0;
      const counted = new PassThrough({ highWaterMark: 1 << 20 });
      counted.on('data', (c: Buffer) => (size += c.length));
      data.on('error', (e) => counted.destroy(e));
      data.pipe(counted);
      const up = new Upload({
        client: this.s3,
        params: { Bucket: this.o.bucket, Key: key, Body: counted, IfNoneMatch: '*' },
        partSize: this.o.partSize,
        queueSize: this.o.queueSize,
        leavePartsOnError: false,
      });
      // a source that fails makes lib-storage's reader throw: it aborts the multipart upload and rejects
      await up.done();
      return { size };
    } catch (e) {
      data.destroy();
      if (isConflict(e)) throw storageErrors.exists(id);
      if ((e as { $metadata?: unknown }).$metadata) this.io(`write blob ${id}`, e);
      throw e;
    } finally {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: claim })).catch(() => undefined);
    }
  }

  async get(id: string, range?: { start: number; end: number }): Promise<Readable> {
    const key = this.key(id);
    let header: string | undefined;
    if (range) {
      const st = await this.stat(id);
      if (!st) throw storageErrors.notFound(id);
      if (!(
        Number.isInteger(range.start) &&
        Number.isInteger(range.end) &&
        range.start >= 0 &&
        range.start <= range.end &&
        range.end <= st.size
      ))
        throw storageErrors.badRange(`range [${range.start}, ${range.end}) is outside blob ${id} (${st.size} bytes)`);
      if (range.start === range.end) return Readable.from([]);
      header = `bytes=${range.start}-${range.end - 1}`;
    }
    try {
      const r = await this.s3.send(
        new GetObjectCommand({ Bucket: this.o.bucket, Key: key, ...(header ? { Range: header } : {}) }),
      );
      return r.Body as Readable;
    } catch (e) {
      if (s3Status(e) === 404) throw storageErrors.notFound(id);
      this.io(`read blob ${id}`, e);
    }
  }

  private async head(id: string): Promise<{ size: number; mtimeMs: number } | null> {
    const key = this.key(id);
    try {
      const h = await this.s3.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: key }));
      return { size: h.ContentLength ?? 0, mtimeMs: h.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (s3Status(e) === 404) return null;
      this.io(`read blob ${id}`, e);
    }
  }

  /** One ranged GET: its Content-Range gives the stored size. */
  async prefix(id: string, max: number): Promise<{ size: number; bytes: Buffer } | null> {
    const key = this.key(id);
    try {
      const r = await this.s3.send(
        new GetObjectCommand({ Bucket: this.o.bucket, Key: key, Range: `bytes=0-${Math.max(0, max - 1)}` }),
      );
      const bytes = Buffer.from(await r.Body!.transformToByteArray());
      const total = /\/(\d+)$/.exec(r.ContentRange ?? '');
      return { size: total ? Number(total[1]) : bytes.length, bytes: bytes.subarray(0, max) };
    } catch (e) {
      const status = s3Status(e);
      if (status === 404) return null;
      // an empty object has no byte 0 to range over
      if (status === 416) return (await this.head(id)) ? { size: 0, bytes: Buffer.alloc(0) } : null;
      this.io(`read blob ${id}`, e);
    }
  }

  async stat(id: string): Promise<{ size: number } | null> {
    const h = await this.head(id);
    return h ? { size: h.size } : null;
  }

  async delete(id: string): Promise<void> {
    const key = this.key(id);
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: key }));
    } catch (e) {
      if (s3Status(e) !== 404) this.io(`delete blob ${id}`, e);
    }
  }

  async *list(): AsyncIterable<string> {
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.o.bucket,
            Prefix: this.o.prefix,
            Delimiter: '/',
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (e) {
        this.io('list blobs', e);
      }
      for (const c of r.Contents ?? []) {
        const name = c.Key!.slice(this.o.prefix.length);
        if (BLOB_ID.test(name)) yield name;
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * What writers that died left behind, once older than `olderThanMs`: multipart uploads never
   * completed (aborted, which frees their parts) and claims. Returns how many were removed.
   */
  async collectTemp(olderThanMs: number, nowMs = Date.now()): Promise<number> {
    let n = 0;
    const before = nowMs - olderThanMs;
    try {
      let keyMarker: string | undefined;
      let uploadMarker: string | undefined;
      do {
        const r = await this.s3.send(
          new ListMultipartUploadsCommand({
            Bucket: this.o.bucket,
            Prefix: this.o.prefix,
            ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: uploadMarker } : {}),
          }),
        );
        for (const u of r.Uploads ?? []) {
          if ((u.Initiated?.getTime() ?? 0) >= before) continue;
          await this.s3.send(
            new AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key: u.Key!, UploadId: u.UploadId! }),
          );
          n++;
        }
        keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
        uploadMarker = r.NextUploadIdMarker;
      } while (keyMarker);
      let token: string | undefined;
      do {
        const r = await this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.o.bucket,
            Prefix: this.o.prefix + CLAIMS,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const c of r.Contents ?? []) {
          if ((c.LastModified?.getTime() ?? 0) >= before) continue;
          await this.s3.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: c.Key! }));
          n++;
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (e) {
      this.io('collect unfinished uploads', e);
    }
    return n;
  }

  /** When a blob was written (orphan collection spares young blobs whose row may not be committed yet). */
  async mtimeMs(id: string): Promise<number | null> {
    return (await this.head(id))?.mtimeMs ?? null;
  }
}

/** 412 Precondition Failed (the object exists), 409 ConditionalRequestConflict (a concurrent conditional write won). */
const isConflict = (e: unknown): boolean => s3Status(e) === 412 || s3Status(e) === 409;
