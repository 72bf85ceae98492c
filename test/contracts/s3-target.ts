/**
 * The S3 backup target against a real S3 server with Object Lock (Ceph RGW, test/support/s3.ts):
 * the BackupTarget contract through the registry, then Object Lock in compliance mode against the
 * appliance's own credentials. Run by ./s3.test.ts on its cluster (one cluster per run).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { backupRetainUntil, normaliseTargetUrl, openTarget } from '../../src/backup/registry.js';
import { S3Target } from '../../src/backup/targets/s3.js';
import { newBackupId } from '../../src/backup/format.js';
import { s3Client } from '../../src/shared/s3.js';
import type { TestS3 } from '../support/s3.js';
import { tempDir } from '../support/tmp.js';
import { backupTargetContract } from './backup-target.js';

export function s3TargetSuite(s3: () => Promise<TestS3>): void {
  /** A bucket created with Object Lock enabled (versioned), as docs/scale-out.md asks. */
  async function lockedBucket(): Promise<{ srv: TestS3; client: S3Client; bucket: string }> {
    const srv = await s3();
    const client = s3Client({ ...srv, forcePathStyle: true });
    const bucket = `backups-${crypto.randomBytes(4).toString('hex')}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    return { srv, client, bucket };
  }

  backupTargetContract('S3Target (Ceph RGW, Object Lock bucket)', async () => {
    const { srv, client, bucket } = await lockedBucket();
    client.destroy();
    const secretFile = path.join(tempDir(), 'secret');
    fs.writeFileSync(secretFile, srv.secretAccessKey);
    const url = normaliseTargetUrl(
      's3',
      `s3+http://${srv.accessKeyId}@${new URL(srv.endpoint).host}/${bucket}/site-b?region=${srv.region}&quotaGiB=50`,
    );
    const target = openTarget(
      { type: 's3', url, passwordFile: secretFile },
      { readSecret: (f) => fs.readFileSync(f, 'utf8') },
    );
    expect(target.display).not.toContain(srv.secretAccessKey);
    return { target, cleanup: async () => undefined };
  });

  describe('S3 target: Object Lock in compliance mode', () => {
    let t: Awaited<ReturnType<typeof lockedBucket>>;
    beforeAll(async () => {
      t = await lockedBucket();
    });
    afterAll(() => t?.client.destroy());

    const target = (retainUntil: (p: string) => Date | null, prefix = 'coffre/') =>
      new S3Target(s3Client({ ...t.srv, forcePathStyle: true }), {
        bucket: t.bucket,
        prefix,
        display: `s3://${t.bucket}/${prefix}`,
        retainUntil,
        quotaBytes: null,
      });

    it("locks a backup's files until its slot expires: the appliance's credentials can neither delete nor overwrite them", async () => {
      const tg = target(backupRetainUntil);
      const id = newBackupId(Date.now());
      await tg.put(`.tmp-${id}/p0`, Buffer.from('part zero'));
      await tg.put(`.tmp-${id}/sidecar.json`, Buffer.from('{"wrapped":"key"}'));
      await tg.rename(`.tmp-${id}`, id);
      const key = `coffre/${id}/p0`;
      const r = await t.client.send(new GetObjectRetentionCommand({ Bucket: t.bucket, Key: key }));
      expect(r.Retention?.Mode).toBe('COMPLIANCE');
      expect(r.Retention?.RetainUntilDate?.getTime()).toBe(backupRetainUntil(`${id}/p0`)!.getTime());
      expect(r.Retention!.RetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
      // through the target: refused, nothing deleted
      await expect(tg.remove(id)).rejects.toMatchObject({ code: 'TARGET_LOCKED' });
      await expect(tg.put(`${id}/p0`, Buffer.from('ransom'))).rejects.toMatchObject({ code: 'TARGET_EXISTS' });
      expect((await tg.list(id)).map((e) => e.name)).toEqual(['p0', 'sidecar.json']);
      // with the same credentials straight at the S3 API (what ransomware holding them would do)
      const versions = await t.client.send(new ListObjectVersionsCommand({ Bucket: t.bucket, Prefix: key }));
      const v = versions.Versions!.find((x) => x.Key === key)!;
      await expect(
        t.client.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: key, VersionId: v.VersionId })),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(
        t.client.send(
          new PutObjectRetentionCommand({
            Bucket: t.bucket,
            Key: key,
            VersionId: v.VersionId,
            Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
          }),
        ),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(
        t.client.send(
          new PutObjectRetentionCommand({
            Bucket: t.bucket,
            Key: key,
            VersionId: v.VersionId,
            BypassGovernanceRetention: true,
            Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
          }),
        ),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      // an overwrite only stacks a newer version: the retained one keeps its bytes and its lock
      await t.client.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: 'ransom' }));
      const kept = await t.client.send(new GetObjectCommand({ Bucket: t.bucket, Key: key, VersionId: v.VersionId }));
      expect(await kept.Body!.transformToString()).toBe('part zero');
      await expect(
        t.client.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: key, VersionId: v.VersionId })),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    });

    it('temporary names and the marker are not locked; once retain-until has passed the backup is deleted, every version', async () => {
      const until = new Date(Date.now() + 4000);
      const tg = target((p) => (p.startsWith('b1') ? until : null), 'expiry/');
      await tg.put('.tmp-b1/p0', Buffer.from('x'));
      await tg.put('.coffre-target', Buffer.from('marker'));
      await tg.remove('.coffre-target'); // rewritten at every registration
      await tg.rename('.tmp-b1', 'b1');
      await expect(tg.remove('b1')).rejects.toMatchObject({ code: 'TARGET_LOCKED' });
      await new Promise((r) => setTimeout(r, Math.max(0, until.getTime() - Date.now()) + 1500));
      await tg.remove('b1');
      expect(await tg.list('')).toEqual([]);
      const left = await t.client.send(new ListObjectVersionsCommand({ Bucket: t.bucket, Prefix: 'expiry/' }));
      expect([...(left.Versions ?? []), ...(left.DeleteMarkers ?? [])]).toEqual([]);
    });

    it('refuses URLs that hold a secret or name no bucket', () => {
      expect(() => normaliseTargetUrl('s3', 's3://AK:secret@h/b-1')).toThrow(/never holds the secret/);
      expect(() => normaliseTargetUrl('s3', 's3://AK@h/')).toThrow(/bucket/);
      expect(normaliseTargetUrl('s3', 's3://AK@s3.example.net/coffre-b/site?quotaGiB=10')).toBe(
        's3://AK@s3.example.net/coffre-b/site/?region=us-east-1&quotaGiB=10',
      );
    });
  });
}
