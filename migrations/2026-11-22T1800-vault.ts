import type { Kysely } from 'kysely';

/**
 * Vault: folders, documents, versions, uploads in flight, per-workspace usage and quota.
 * Frozen once landed. Workspaces belong to the identity module (referenced by id only, so this
 * migration does not depend on the order of the identity migration).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('vault_folders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text', (c) => c.references('vault_folders.id').onDelete('restrict'))
    .addColumn('name_enc', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('vault_folders_ws_parent')
    .on('vault_folders')
    .columns(['workspace_id', 'parent_id'])
    .execute();

  await db.schema
    .createTable('vault_documents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('folder_id', 'text', (c) => c.references('vault_folders.id').onDelete('set null'))
    .addColumn('name_enc', 'text', (c) => c.notNull())
    .addColumn('description_enc', 'text')
    .addColumn('tags_enc', 'text')
    .addColumn('head_version', 'integer', (c) => c.notNull())
    .addColumn('head_size', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('trashed_at', 'bigint')
    .addColumn('trashed_by', 'text')
    .addColumn('purged_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('vault_documents_ws_created')
    .on('vault_documents')
    .columns(['workspace_id', 'created_at', 'id'])
    .execute();
  await db.schema.createIndex('vault_documents_folder').on('vault_documents').column('folder_id').execute();
  await db.schema.createIndex('vault_documents_trashed').on('vault_documents').column('trashed_at').execute();

  await db.schema
    .createTable('vault_versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('document_id', 'text', (c) => c.notNull().references('vault_documents.id').onDelete('restrict'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('blob_id', 'text', (c) => c.notNull().unique())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('stored_size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('vault_versions_doc_version', ['document_id', 'version'])
    .execute();

  await db.schema
    .createTable('vault_uploads')
    .addColumn('blob_id', 'text', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vault_uploads_expires').on('vault_uploads').column('expires_at').execute();

  await db.schema
    .createTable('vault_usage')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey())
    .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}
