import type { Kysely } from 'kysely';

/**
 * Two-person rule on backup targets and escrow keys (src/backup/requests.ts): a change asked for
 * through the API is stored here, with the SHA-256 of its canonical form, until a different
 * person with the admin role approves or rejects it, or it expires. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('backup_change_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'bigint')
    .addColumn('reason', 'text')
    .execute();
  await db.schema
    .createIndex('backup_change_requests_state')
    .on('backup_change_requests')
    .columns(['state', 'requested_at'])
    .execute();
}
