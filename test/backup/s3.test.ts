/**
 * A whole backup cycle on S3, on a real Ceph RGW (test/support/s3.ts): an appliance whose blobs
 * are in an S3 bucket backs up to an S3 target with Object Lock, verifies the backup, and
 * `coffre restore --from s3://… --storage FILE` builds a new installation whose blobs go into
 * another S3 bucket; started, it serves the same bytes. The restore drill runs on the same backup.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { s3Client } from '../../src/shared/s3.js';
import { startS3, type TestS3 } from '../support/s3.js';
import { runCli, startServe } from '../support/cli.js';
import { LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';

let s3: TestS3;
let client: S3Client;
let e: BackupEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-backup-s3-'));
const secretFile = path.join(tmp, 's3-secret');
const storageOf = (bucket: string) => ({
  type: 's3',
  s3: {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket,
    prefix: 'coffre/',
    accessKeyId: s3.accessKeyId,
    secretAccessKeyFile: secretFile,
    partSizeMiB: 5,
  },
});
const targetUrl = () => `s3+http://${s3.accessKeyId}@${new URL(s3.endpoint).host}/backups/site-b?region=${s3.region}`;

beforeAll(async () => {
  s3 = await startS3();
  fs.writeFileSync(secretFile, s3.secretAccessKey, { mode: 0o600 });
  client = s3Client({ ...s3, forcePathStyle: true });
  await client.send(new CreateBucketCommand({ Bucket: 'blobs-a' }));
  await client.send(new CreateBucketCommand({ Bucket: 'blobs-b' }));
  await client.send(new CreateBucketCommand({ Bucket: 'backups', ObjectLockEnabledForBucket: true }));
  e = await openBackupEnv({
    COFFRE_CFG_storage: JSON.stringify(storageOf('blobs-a')),
    // the Ceph daemons share the machine's cores with the HSM here: a longer deadline per HSM call
    COFFRE_CFG_keys__callTimeoutMs: '3000',
  });
  await e.upload('minutes.pdf', randomDoc(700_000));
  await e.upload('note.txt', Buffer.from('the safe is in the basement'));
  await e.service.addTarget(
    { name: 's3dr', type: 's3', url: targetUrl(), ...LYON, passwordFile: secretFile },
    'local:test',
  );
}, 240_000);
afterAll(async () => {
  client?.destroy();
  await e?.close();
  await s3?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).filter((k) => !k.includes('/.'));
}

describe(
  'a backup cycle on S3: blobs in a bucket, an Object Lock target, a restore into another bucket',
  { timeout: 240_000 },
  () => {
    it('backs up, verifies, and restores into an S3 blob store; the restored installation serves the same bytes', async () => {
      expect(await keys('blobs-a', 'coffre/')).toHaveLength(2);
      const run = await e.service.run({ actor: 'local:test' });
      expect(run.ok, JSON.stringify(run)).toBe(true);
      const v = await e.service.verify('latest', { actor: 'local:test', wait: true });
      expect(v).toMatchObject({ ok: true, target: 's3dr' });
      // the restore drill: the newest backup restored into a scratch directory, its documents checked
      const d = await e.service.drill({ actor: 'local:test', wait: true });
      expect(d).toMatchObject({ backupId: v.id, target: 's3dr', documents: 2, blobs: 2 });

      const storageFile = path.join(tmp, 'storage.json');
      fs.writeFileSync(storageFile, JSON.stringify(storageOf('blobs-b')));
      const keysFile = path.join(tmp, 'keys.json');
      fs.writeFileSync(keysFile, JSON.stringify(e.env.t.token.section));
      const newDir = path.join(tmp, 'restored');
      const r = await runCli([
        'restore',
        '--from',
        targetUrl(),
        '--password-file',
        secretFile,
        '--backup',
        'latest',
        '--data-dir',
        newDir,
        '--keys',
        keysFile,
        '--storage',
        storageFile,
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ documents: 2, blobs: 2 });
      // the blobs went to the configured bucket, none to a local directory
      expect((await keys('blobs-b', 'coffre/')).sort()).toEqual((await keys('blobs-a', 'coffre/')).sort());
      expect(fs.existsSync(path.join(newDir, 'blobs'))).toBe(false);
      const cfg = JSON.parse(fs.readFileSync(path.join(newDir, 'config.json'), 'utf8')) as {
        storage: { s3: { bucket: string } };
      };
      expect(cfg.storage.s3.bucket).toBe('blobs-b');

      const served = await startServe(newDir, 0);
      try {
        const ca = fs.readFileSync(path.join(newDir, 'tls', 'cert.pem'));
        for (const [id, bytes] of e.docs) {
          const res = await fetchDoc(served.url, ca, id, e.alice.token);
          expect(res.status).toBe(200);
          expect(res.body.equals(bytes)).toBe(true);
        }
      } finally {
        const exited = new Promise((r) => served.child.once('exit', r));
        served.child.kill('SIGTERM');
        await exited;
      }
    });
  },
);

function fetchDoc(url: string, ca: Buffer, id: string, token: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`/api/v1/documents/${id}/content`, url);
    import('node:https')
      .then(({ default: https }) =>
        https
          .get(
            {
              host: u.hostname,
              port: u.port,
              path: u.pathname,
              ca,
              servername: 'localhost',
              headers: { authorization: `Bearer ${token}` },
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
            },
          )
          .on('error', reject),
      )
      .catch(reject);
  });
}
