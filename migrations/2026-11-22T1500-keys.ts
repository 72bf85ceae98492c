import type { Kysely } from 'kysely';

/** Keys: wrapped data keys (envelope encryption). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('data_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.unique())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('kek_label', 'text', (c) => c.notNull())
    .addColumn('kek_version', 'integer', (c) => c.notNull())
    .addColumn('mechanism', 'text', (c) => c.notNull())
    .addColumn('wrapped', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('rewrapped_at', 'bigint')
    .execute();
  await db.schema.createIndex('data_keys_kek_version').on('data_keys').columns(['kek_version', 'id']).execute();
}
