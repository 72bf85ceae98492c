import { Type, type Static } from '@sinclair/typebox';

export const SqliteDb = Type.Object(
  {
    type: Type.Literal('sqlite'),
    file: Type.String({ default: 'coffre.db' }),
    /** how long a change waits (asynchronously, never blocking the server) for another process's lock before DB_BUSY */
    busyTimeoutMs: Type.Integer({ minimum: 0, default: 5000 }),
  },
  { additionalProperties: false },
);
export const PostgresDb = Type.Object(
  {
    type: Type.Literal('postgres'),
    host: Type.String(),
    port: Type.Integer({ default: 5432 }),
    database: Type.String(),
    user: Type.String(),
    passwordFile: Type.Optional(Type.String()),
    ssl: Type.Boolean({ default: true }),
    maxConnections: Type.Integer({ minimum: 1, default: 10 }),
  },
  { additionalProperties: false },
);
export const DatabaseSection = Type.Union([SqliteDb, PostgresDb], { default: { type: 'sqlite', file: 'coffre.db' } });
export type DatabaseConfig = Static<typeof DatabaseSection>;
export type PostgresConfig = Static<typeof PostgresDb>;
