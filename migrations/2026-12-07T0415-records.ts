import type { Kysely } from 'kysely';

/**
 * Records management: retention policies (minimum keeping period from deposit, per workspace or
 * folder), legal holds, two-person change requests, and destruction certificates. Ids only, no
 * confidential text. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('records_policies')
    .addColumn('scope_kind', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('min_days', 'integer', (c) => c.notNull())
    .addColumn('set_at', 'bigint', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('approved_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('records_policies_pk', ['scope_kind', 'scope_id'])
    .execute();
  await db.schema.createIndex('records_policies_ws').on('records_policies').column('workspace_id').execute();

  await db.schema
    .createTable('records_holds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('scope_kind', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('placed_at', 'bigint', (c) => c.notNull())
    .addColumn('placed_by', 'text', (c) => c.notNull())
    .addColumn('released_at', 'bigint')
    .addColumn('released_by', 'text')
    .execute();
  await db.schema
    .createIndex('records_holds_ws')
    .on('records_holds')
    .columns(['workspace_id', 'released_at'])
    .execute();

  await db.schema
    .createTable('records_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('scope_kind', 'text')
    .addColumn('scope_id', 'text')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('min_days', 'integer')
    .addColumn('hold_id', 'text')
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('records_requests_state')
    .on('records_requests')
    .columns(['state', 'requested_at'])
    .execute();

  await db.schema
    .createTable('records_certificates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('document_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('destroyed_at', 'bigint', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('signature', 'text')
    .execute();
  await db.schema.createIndex('records_certificates_doc').on('records_certificates').column('document_id').execute();
}
