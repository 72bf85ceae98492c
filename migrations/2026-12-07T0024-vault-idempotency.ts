import type { Kysely } from 'kysely';

/**
 * Idempotency keys of uploads (src/vault/upload.ts): a retried upload carrying the same
 * `Idempotency-Key` gets the version the first attempt created. Keys are per user and stored as
 * SHA-256 (the client's text is not kept). Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('vault_idempotency')
    .addColumn('actor_id', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull())
    /** `ws:<id>` (new document) or `doc:<id>` (new version): a key reused elsewhere is refused */
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('document_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('vault_idempotency_pk', ['actor_id', 'key_hash'])
    .execute();
  await db.schema.createIndex('vault_idempotency_created').on('vault_idempotency').column('created_at').execute();
  await db.schema.createIndex('vault_idempotency_document').on('vault_idempotency').column('document_id').execute();
}
