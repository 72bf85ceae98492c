import type { Kysely } from 'kysely';

/**
 * Monitoring (src/monitoring/): alert life cycle (open → acknowledged → resolved), the delivery
 * outbox every process writes and the serving process (or the CLI before it exits) drains under a
 * lease, and metric samples (1-minute points for a day, 15-minute points up to 30 days).
 * Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('alerts').addColumn('dedupe_key', 'text').execute();
  await db.schema
    .alterTable('alerts')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('open'))
    .execute();
  await db.schema.alterTable('alerts').addColumn('last_at', 'bigint').execute();
  await db.schema.alterTable('alerts').addColumn('notified_at', 'bigint').execute();
  await db.schema.alterTable('alerts').addColumn('acked_at', 'bigint').execute();
  await db.schema.alterTable('alerts').addColumn('acked_by', 'text').execute();
  await db.schema.alterTable('alerts').addColumn('resolved_at', 'bigint').execute();
  await db.schema.alterTable('alerts').addColumn('resolved_by', 'text').execute();
  await db.schema.createIndex('alerts_key_state').on('alerts').columns(['dedupe_key', 'state']).execute();
  await db.schema.createIndex('alerts_state_at').on('alerts').columns(['state', 'at']).execute();

  await db.schema
    .createTable('alert_outbox')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('alert_id', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('notice', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('next_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('holder', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('sent_at', 'bigint')
    .addColumn('failed_at', 'bigint')
    .addColumn('last_error', 'text')
    .execute();
  await db.schema
    .createIndex('alert_outbox_pending')
    .on('alert_outbox')
    .columns(['sent_at', 'failed_at', 'next_at'])
    .execute();
  await db.schema.createIndex('alert_outbox_alert').on('alert_outbox').column('alert_id').execute();

  await db.schema
    .createTable('metric_samples')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    /** 60000 (1-minute points) or 900000 (15-minute points) */
    .addColumn('res', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('max', 'double precision', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('metric_samples_pk', ['name', 'labels', 'res', 'at'])
    .execute();
  await db.schema.createIndex('metric_samples_at').on('metric_samples').columns(['res', 'at']).execute();
}
