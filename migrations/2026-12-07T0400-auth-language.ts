import type { Kysely } from 'kysely';

/**
 * Each user's language (docs/i18n.md): 'en', 'fr', or null for "follow the browser". The console,
 * the appliance's error messages and the e-mails sent to the user follow it. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('language', 'text').execute();
}
