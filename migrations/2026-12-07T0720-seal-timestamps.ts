import type { Kysely } from 'kysely';

/** RFC 3161 timestamps of signed proofs other than seals and receipts (src/seals/tables.ts). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('seal_timestamps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('ts_state', 'text', (c) => c.notNull())
    .addColumn('ts_token', 'text')
    .addColumn('ts_at', 'bigint')
    .addColumn('ts_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('seal_timestamps_subject').on('seal_timestamps').columns(['kind', 'subject']).execute();
  await db.schema.createIndex('seal_timestamps_sha256').on('seal_timestamps').columns(['sha256']).execute();
  await db.schema
    .createIndex('seal_timestamps_state')
    .on('seal_timestamps')
    .columns(['ts_state', 'created_at'])
    .execute();
}
