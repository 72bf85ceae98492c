import { Type, type Static } from '@sinclair/typebox';

export const StorageSection = Type.Object(
  {
    /** `fs`: a local (or shared) directory, `dir`; `s3`: the S3-compatible object store `s3` (docs/scale-out.md) */
    type: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { default: 'fs' }),
    /** `fs`: the blob directory */
    dir: Type.String({ default: 'blobs' }),
    /** `s3`: AWS S3, Ceph RGW, MinIO, StorageGRID, ECS… (required when `type` is `s3`) */
    s3: Type.Optional(
      Type.Object(
        {
          /** `https://s3.example.net:443`; absent: AWS S3 in `region` */
          endpoint: Type.Optional(Type.String({ pattern: '^https?://[^/?#@]+/?$' })),
          region: Type.String({ default: 'us-east-1' }),
          bucket: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' }),
          /** key prefix inside the bucket, e.g. `coffre/blobs/` (empty, or segments each ending in `/`) */
          prefix: Type.String({ default: '', pattern: '^([A-Za-z0-9._-]+/)*$' }),
          /** path-style addressing (`endpoint/bucket/key`), what most on-premises stores expect */
          forcePathStyle: Type.Boolean({ default: true }),
          /** the access key id (not a secret) */
          accessKeyId: Type.String({ minLength: 1 }),
          /** file holding the secret access key (or `credential:NAME`) */
          secretAccessKeyFile: Type.String(),
          /** multipart part size; memory per upload is about (queueSize + 2) × partSize */
          partSizeMiB: Type.Integer({ minimum: 5, maximum: 512, default: 8 }),
          /** parts of one upload sent at once */
          queueSize: Type.Integer({ minimum: 1, maximum: 16, default: 2 }),
          /** a PEM file of the CA that signed the endpoint's certificate (a private CA) */
          caFile: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, default: { type: 'fs' } },
);
export type StorageConfig = Static<typeof StorageSection>;
