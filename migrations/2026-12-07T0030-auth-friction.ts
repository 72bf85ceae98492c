import type { Kysely } from 'kysely';

/**
 * Sign-in friction instead of lockout: single-use proof-of-work challenges, the addresses and
 * devices a user has completed a sign-in from, notices shown at the next sign-in, and the
 * throttle reservation a login challenge releases once its second factor succeeds. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('auth_proofs')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('account_key', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('bits', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('auth_proofs_expiry').on('auth_proofs').column('expires_at').execute();

  await db.schema
    .createTable('auth_known_clients')
    .addColumn('client_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('auth_known_clients_user').on('auth_known_clients').column('user_id').execute();

  await db.schema
    .createTable('auth_user_notices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('shown_at', 'bigint')
    .execute();
  await db.schema.createIndex('auth_user_notices_user').on('auth_user_notices').column('user_id').execute();

  await db.schema.alterTable('login_challenges').addColumn('throttle_release', 'text').execute();
}
