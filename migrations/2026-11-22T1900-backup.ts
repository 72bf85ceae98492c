import type { Kysely } from 'kysely';

/** Backup catalogue: targets, escrow keys, backups (with their HSM-wrapped session keys), checks. Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('backup_targets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('jurisdiction', 'text', (c) => c.notNull())
    .addColumn('lat', 'double precision', (c) => c.notNull())
    .addColumn('lon', 'double precision', (c) => c.notNull())
    .addColumn('host_key', 'text')
    .addColumn('identity_file', 'text')
    .addColumn('password_file', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('backup_escrow_keys')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('armored', 'text', (c) => c.notNull())
    .addColumn('user_ids', 'text', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('backups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('slot', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('plain_size', 'bigint')
    .addColumn('size', 'bigint')
    .addColumn('parts', 'integer')
    .addColumn('members', 'integer')
    .addColumn('wrapped_key', 'text')
    .addColumn('escrow', 'text')
    .addColumn('verified_at', 'bigint')
    .addColumn('error', 'text')
    .addColumn('deleted_at', 'bigint')
    .addColumn('deleted_reason', 'text')
    .execute();
  await db.schema.createIndex('backups_target_created').on('backups').columns(['target', 'created_at']).execute();
  await db.schema
    .createTable('backup_checks')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('backup_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint', (c) => c.notNull())
    .addColumn('ok', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('details', 'text')
    .execute();
  await db.schema
    .createIndex('backup_checks_backup')
    .on('backup_checks')
    .columns(['backup_id', 'started_at'])
    .execute();
}
