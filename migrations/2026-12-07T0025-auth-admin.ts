import type { Kysely } from 'kysely';
import { skeletonOf } from '../src/auth/username.js';

/**
 * Identity hardening: the confusable skeleton of each user name (UTS #39, unique), a role waiting
 * for its second factor, and two-admin account recoveries. Frozen once landed: the skeleton used
 * is src/auth/username.ts's (Unicode's confusables.txt through the unhomoglyph package).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('username_skeleton', 'text').execute();
  await db.schema.alterTable('users').addColumn('pending_role', 'text').execute();
  // names that already collide keep working: the later one's skeleton is made distinct by its id
  const seen = new Set<string>();
  const rows = (await db
    .selectFrom('users')
    .select(['id', 'username_key'])
    .orderBy('created_at')
    .orderBy('id')
    .execute()) as { id: string; username_key: string }[];
  for (const r of rows) {
    let s = skeletonOf(r.username_key);
    if (seen.has(s)) s = `${s}#${r.id}`;
    seen.add(s);
    await db.updateTable('users').set({ username_skeleton: s }).where('id', '=', r.id).execute();
  }
  await db.schema.createIndex('users_username_skeleton').on('users').column('username_skeleton').unique().execute();

  await db.schema
    .createTable('account_recoveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('approved_by', 'text')
    .addColumn('approved_at', 'bigint')
    .addColumn('link_id', 'text')
    .addColumn('closed_at', 'bigint')
    .execute();
  await db.schema.createIndex('account_recoveries_user').on('account_recoveries').column('user_id').execute();
}
