import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/tmp.js';
import { validateConfig, type ConfigError } from '../../src/config/index.js';

describe('storage configuration', () => {
  const dir = tempDir();
  const secret = path.join(dir, 's3-secret');
  fs.writeFileSync(secret, 'not-logged\n');
  const base = {
    version: 1,
    applianceId: 'abcdefgh-1234',
    keys: { type: 'pkcs11', module: '/bin/sh', pinFile: '/bin/sh' },
    tls: { certFile: '/bin/sh', keyFile: '/bin/sh' },
  };
  const problems = (storage: unknown) => {
    try {
      validateConfig({ ...base, storage }, dir, {});
      return [];
    } catch (e) {
      return (e as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
    }
  };

  it('takes an S3 section with its defaults; the secret is a file, resolved against the data dir', () => {
    const c = validateConfig(
      {
        ...base,
        storage: {
          type: 's3',
          s3: {
            endpoint: 'https://s3.example.net',
            bucket: 'coffre-blobs',
            accessKeyId: 'AK',
            secretAccessKeyFile: 's3-secret',
          },
        },
      },
      dir,
      {},
    );
    expect(c.storage.s3).toEqual({
      endpoint: 'https://s3.example.net',
      region: 'us-east-1',
      bucket: 'coffre-blobs',
      prefix: '',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKeyFile: secret,
      partSizeMiB: 8,
      queueSize: 2,
    });
    expect(validateConfig(base, dir, {}).storage).toEqual({ type: 'fs', dir: path.join(dir, 'blobs') });
  });

  it('names each problem: a missing section, a missing secret file, a bad bucket or prefix, a part size below S3’s minimum', () => {
    expect(problems({ type: 's3' })).toEqual(['/storage/s3: required when storage.type is "s3"']);
    const s3 = { bucket: 'coffre-blobs', accessKeyId: 'AK', secretAccessKeyFile: 'absent' };
    expect(problems({ type: 's3', s3 })).toEqual([
      `/storage/s3/secretAccessKeyFile: file not found: ${path.join(dir, 'absent')}`,
    ]);
    const p = problems({
      type: 's3',
      s3: { ...s3, secretAccessKeyFile: secret, bucket: 'Bad_Bucket', prefix: '../x', partSizeMiB: 1 },
    });
    expect(p.map((x) => x.split(':')[0])).toEqual(
      expect.arrayContaining(['/storage/s3/bucket', '/storage/s3/prefix', '/storage/s3/partSizeMiB']),
    );
  });
});
