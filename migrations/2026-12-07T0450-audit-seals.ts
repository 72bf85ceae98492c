import type { Kysely } from 'kysely';

/**
 * Daily seals of the audit trail and signed checkpoints (src/audit/tables.ts, docs/formats.md
 * "Daily audit seals"). Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('audit_seals')
    .addColumn('day', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_hash', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('cert_fingerprint', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('ts_state', 'text', (c) => c.notNull())
    .addColumn('ts_token', 'text')
    .addColumn('ts_at', 'bigint')
    .addColumn('ts_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('audit_checkpoints').addColumn('signature', 'text').execute();
}
