import type { Kysely } from 'kysely';

/** Alerts raised by any module (src/monitoring/). Frozen once landed. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('targets', 'text')
    .addColumn('deliveries', 'text')
    .addColumn('repeats', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('alerts_at').on('alerts').column('at').execute();
  await db.schema.createIndex('alerts_kind_at').on('alerts').columns(['kind', 'at']).execute();
}
