import type { Kysely } from 'kysely';

/** A TOTP secret being set up is kept apart until confirmed: the current one keeps working. Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('totp_pending_enc', 'text').execute();
}
