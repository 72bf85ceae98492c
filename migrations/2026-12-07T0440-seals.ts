import type { Kysely } from 'kysely';

/** The sealing key's certificates (src/seals/tables.ts). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('seal_certificates')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('key_name', 'text', (c) => c.notNull())
    .addColumn('pem', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('seal_certificates_key')
    .on('seal_certificates')
    .columns(['key_name', 'created_at'])
    .execute();
}
