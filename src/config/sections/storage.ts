import { Type, type Static } from '@sinclair/typebox';

export const StorageSection = Type.Object(
  {
    type: Type.Literal('fs'),
    dir: Type.String({ default: 'blobs' }),
  },
  { additionalProperties: false, default: { type: 'fs' } },
);
export type StorageConfig = Static<typeof StorageSection>;
