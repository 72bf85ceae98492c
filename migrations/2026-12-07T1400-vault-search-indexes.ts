import { sql, type Kysely } from 'kysely';

/**
 * Indexes that keep listing and search bounded at a million documents in one workspace
 * (src/vault/name-search.ts):
 * - `vault_documents_live`: the live documents of a workspace, newest first (partial: neither
 *   trashed nor purged), so a first page or a search walking newest first never reads a trashed
 *   or purged row;
 * - `vault_documents_scope`: a document's id with everything a search filters it on, so checking
 *   an index row's document (workspace, trash, folder) and ordering it reads this index only;
 * - `vault_documents_unindexed_any`: the documents not in the name index yet, whatever their
 *   workspace (partial, empty once indexed), so the `vault.index-names` job at start does not
 *   read every row to find none.
 * Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('vault_documents_live')
    .on('vault_documents')
    // the two null columns make it covering for SQLite, which does not count the index's own
    // conditions as known values
    .columns(['workspace_id', 'created_at', 'id', 'purged_at', 'trashed_at'])
    .where(sql.ref('trashed_at'), 'is', null)
    .where(sql.ref('purged_at'), 'is', null)
    .execute();
  await db.schema
    .createIndex('vault_documents_scope')
    .on('vault_documents')
    .columns(['id', 'workspace_id', 'purged_at', 'trashed_at', 'folder_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('vault_documents_unindexed_any')
    .on('vault_documents')
    .columns(['id', 'purged_at'])
    .where(sql.ref('name_index'), 'is', null)
    .execute();
}
