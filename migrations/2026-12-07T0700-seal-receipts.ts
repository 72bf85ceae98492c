import type { Kysely } from 'kysely';

/** Deposit receipts (src/seals/tables.ts, docs/formats.md "Deposit receipts"). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('seal_receipts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('document_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('facts_enc', 'text', (c) => c.notNull())
    .addColumn('audit_seq', 'bigint', (c) => c.notNull())
    .addColumn('audit_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('body_enc', 'text')
    .addColumn('signature', 'text')
    .addColumn('cert_fingerprint', 'text')
    .addColumn('signed_at', 'bigint')
    .addColumn('ts_state', 'text', (c) => c.notNull())
    .addColumn('ts_token', 'text')
    .addColumn('ts_at', 'bigint')
    .addColumn('ts_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex('seal_receipts_version')
    .on('seal_receipts')
    .columns(['document_id', 'version'])
    .unique()
    .execute();
  await db.schema.createIndex('seal_receipts_ts').on('seal_receipts').columns(['ts_state', 'created_at']).execute();
  await db.schema.createIndex('seal_receipts_unsigned').on('seal_receipts').columns(['signed_at']).execute();
}
