/**
 * The S3 blob store against a real S3 server (Ceph RGW, test/support/s3.ts): the BlobStore
 * contract, multipart uploads with bounded memory, and collection of what dead writers left; then
 * the S3 backup target on the same cluster (./s3-target.ts).
 */
import crypto from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3/store.js';
import { s3Client } from '../../src/shared/s3.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { blobStoreContract } from './blob-store.js';
import { s3TargetSuite } from './s3-target.js';

let server: Promise<TestS3> | null = null;
const s3 = () => (server ??= startS3());
afterAll(async () => {
  if (server) await (await server).stop();
});

const MiB = 1024 * 1024;
async function freshStore(partSize = 5 * MiB, queueSize = 2) {
  const srv = await s3();
  const client = s3Client({ ...srv, forcePathStyle: true });
  const bucket = `blobs-${crypto.randomBytes(4).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const prefix = 'coffre/blobs/';
  const store = new S3BlobStore(client, { bucket, prefix, partSize, queueSize, display: `s3://${bucket}/${prefix}` });
  return { srv, client, bucket, prefix, store };
}

blobStoreContract('S3BlobStore (Ceph RGW)', async () => {
  const { store, client } = await freshStore();
  return { store, cleanup: async () => client.destroy() };
});

describe('S3BlobStore beyond the contract', () => {
  let t: Awaited<ReturnType<typeof freshStore>>;
  beforeAll(async () => {
    t = await freshStore();
    // eslint-disable-next-line no-console
    console.log(
      `Ceph RGW test cluster: up in ${t.srv.startMs} ms (attempt ${t.srv.attempts}; steps ${JSON.stringify(t.srv.stepsMs)}); RSS KiB ${JSON.stringify(t.srv.rssKiB)}`,
    );
  });
  afterAll(() => t?.client.destroy());

  it('streams a multi-part blob with bounded memory, and reads chunks from anywhere in it', async () => {
    const total = 100 * MiB + 123;
    const pool = crypto.randomBytes(MiB + 7);
    const digest = crypto.createHash('sha256');
    let made = 0;
    const src = Readable.from(
      (async function* () {
        for (let i = 0; made < total; i++) {
          const n = Math.min(MiB, total - made);
          const c = Buffer.from(pool.subarray(i % 7, (i % 7) + n)); // a fresh piece, as a request body gives
          digest.update(c);
          made += n;
          yield c;
        }
      })(),
      { highWaterMark: 1 }, // the source holds one piece, as a request body would
    );
    // live memory (collected garbage excluded): what the upload holds at once
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }, 20);
    expect(await t.store.put('big', src)).toEqual({ size: total });
    clearInterval(sampler);
    // eslint-disable-next-line no-console
    console.log(`100 MiB blob in 5 MiB parts, 2 in flight: live memory peak ${(peak / MiB).toFixed(1)} MiB`);
    // 5 MiB parts: 2 in flight, one being filled and its copy, and the HTTP client's own copies of the
    // parts it sends: about 20 MiB, 25-41 MiB measured, whatever the blob's size (bounded well under
    // half of this 100 MiB blob; a store that buffered the blob would hold all of it)
    expect(peak).toBeLessThan(48 * MiB);
    const back = crypto.createHash('sha256');
    for await (const c of await t.store.get('big')) back.update(c as Buffer);
    expect(back.digest('hex')).toBe(digest.digest('hex'));
    const chunk = Buffer.concat(
      await (await t.store.get('big', { start: 33 * MiB - 10, end: 33 * MiB + 10 })).toArray(),
    );
    expect(chunk.length).toBe(20);
  });

  it('a multi-part upload whose source fails is aborted: nothing listed, no upload left open', async () => {
    const src = Readable.from(
      (async function* () {
        for (let i = 0; i < 12; i++) yield crypto.randomBytes(MiB);
        throw new Error('source died');
      })(),
    );
    await expect(t.store.put('dies', src)).rejects.toThrow();
    expect(await t.store.stat('dies')).toBeNull();
    const open = await t.client.send(new ListMultipartUploadsCommand({ Bucket: t.bucket, Prefix: t.prefix }));
    expect((open.Uploads ?? []).filter((u) => u.Key === `${t.prefix}dies`)).toEqual([]);
    await t.store.put('dies', Readable.from([Buffer.from('later')]));
    expect(await t.store.stat('dies')).toEqual({ size: 5 });
  });

  it('what a killed writer left (an open multipart upload, its claim) stays invisible and is collected after the grace period', async () => {
    // a writer killed mid-upload: its claim and an uncompleted multipart upload with one part
    await t.client.send(
      new PutObjectCommand({ Bucket: t.bucket, Key: `${t.prefix}.claims/killed`, Body: '', IfNoneMatch: '*' }),
    );
    const mpu = await t.client.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: `${t.prefix}killed` }));
    await t.client.send(
      new UploadPartCommand({
        Bucket: t.bucket,
        Key: `${t.prefix}killed`,
        UploadId: mpu.UploadId,
        PartNumber: 1,
        Body: crypto.randomBytes(5 * MiB),
      }),
    );
    expect(await t.store.stat('killed')).toBeNull();
    const listed: string[] = [];
    for await (const x of t.store.list()) listed.push(x);
    expect(listed).not.toContain('killed');
    // its claim holds the id until then: write-once is never bypassed
    await expect(t.store.put('killed', Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      code: 'BLOB_EXISTS',
    });
    expect(await t.store.collectTemp(3_600_000)).toBe(0); // young: spared
    expect(await t.store.collectTemp(3_600_000, Date.now() + 2 * 3_600_000)).toBe(2);
    const open = await t.client.send(new ListMultipartUploadsCommand({ Bucket: t.bucket, Prefix: t.prefix }));
    expect(open.Uploads ?? []).toEqual([]);
    await t.store.put('killed', Readable.from([Buffer.from('x')]));
    expect(await t.store.stat('killed')).toEqual({ size: 1 });
  });

  it('wrong credentials fail as STORAGE_UNAVAILABLE without the secret in the message', async () => {
    const secret = 'not-the-secret-' + crypto.randomBytes(8).toString('hex');
    const bad = new S3BlobStore(s3Client({ ...t.srv, secretAccessKey: secret, forcePathStyle: true }), {
      bucket: t.bucket,
      prefix: t.prefix,
      partSize: 5 * MiB,
      queueSize: 1,
      display: 'test',
    });
    const e = (await bad.stat('big').catch((x: unknown) => x)) as Error & { code?: string };
    expect(e.code).toBe('STORAGE_UNAVAILABLE');
    expect(JSON.stringify({ m: e.message, s: e.stack })).not.toContain(secret);
  });
});

s3TargetSuite(s3);
