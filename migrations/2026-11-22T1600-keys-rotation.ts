import type { Kysely } from 'kysely';

/** Keys: KEK versions (active, retired, destroyed) and rotation runs (resumable). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('kek_versions')
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .addColumn('destroy_after', 'bigint')
    .addColumn('destroyed_at', 'bigint')
    .execute();
  await db.schema
    .createTable('kek_rotations')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('to_version', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('rewrapped', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
