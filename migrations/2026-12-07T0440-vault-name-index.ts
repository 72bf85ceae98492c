import type { Kysely } from 'kysely';

/**
 * Blind index of document names and tags (src/vault/name-index.ts, docs/formats.md "Name search
 * index"): one row per search token of a document, the token an HMAC under the workspace's index
 * key (HSM-wrapped), never a word in clear. `vault_documents.name_index` is the index format the
 * row's tokens were made with; null (rows written before this) until the `vault.index-names` job,
 * which runs at start, has indexed the document. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('vault_name_index')
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('document_id', 'text', (c) => c.notNull())
    /** 'n': a word prefix of the name; 't': a whole tag */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('vault_name_index_pk', ['token', 'document_id'])
    .execute();
  await db.schema
    .createIndex('vault_name_index_document')
    .on('vault_name_index')
    .columns(['document_id', 'kind'])
    .execute();
  await db.schema.alterTable('vault_documents').addColumn('name_index', 'integer').execute();
  await db.schema
    .createIndex('vault_documents_unindexed')
    .on('vault_documents')
    .columns(['workspace_id', 'name_index'])
    .execute();
}
