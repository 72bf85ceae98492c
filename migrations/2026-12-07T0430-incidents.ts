import type { Kysely } from 'kysely';

/**
 * Incidents (src/incidents/): the register, its timeline of updates, corrective and preventive
 * actions, what it affects (components, workspaces, users), and users' acknowledgements of the
 * in-app banner. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('incidents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    /** low | medium | high | critical */
    .addColumn('severity', 'text', (c) => c.notNull())
    /** draft | investigating | identified | monitoring | resolved */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    /** when it was detected: the GDPR 72-hour clock runs from here */
    .addColumn('detected_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('resolved_at', 'bigint')
    /** 1 when personal data is involved (a personal-data breach) */
    .addColumn('personal_data', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('root_cause', 'text')
    /** JSON: the breach notification content (nature, categories, numbers, consequences, measures) */
    .addColumn('breach', 'text')
    /** JSON: DORA major-incident classification fields */
    .addColumn('dora', 'text')
    .addColumn('authority_notified_at', 'bigint')
    /** the title the public status page shows (NULL: not on the status page) */
    .addColumn('public_title', 'text')
    /** the alert that opened it as a draft, or NULL */
    .addColumn('alert_id', 'text')
    .execute();
  await db.schema.createIndex('incidents_status').on('incidents').columns(['status', 'created_at']).execute();
  await db.schema
    .createTable('incident_updates')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('incident_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    /** 1: shown on the status page, in the banner and mailed to affected users */
    .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
    /** JSON { en, fr } of the public message, or NULL */
    .addColumn('public_message', 'text')
    .execute();
  await db.schema
    .createIndex('incident_updates_incident')
    .on('incident_updates')
    .columns(['incident_id', 'at'])
    .execute();
  await db.schema
    .createTable('incident_actions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('incident_id', 'text', (c) => c.notNull())
    /** corrective | preventive */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('owner', 'text')
    .addColumn('due_at', 'bigint')
    /** open | closed */
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('closed_at', 'bigint')
    .addColumn('closed_by', 'text')
    .addColumn('outcome', 'text')
    .execute();
  await db.schema
    .createIndex('incident_actions_incident')
    .on('incident_actions')
    .columns(['incident_id', 'state'])
    .execute();
  await db.schema
    .createTable('incident_affected')
    .addColumn('incident_id', 'text', (c) => c.notNull())
    /** component | workspace | user */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('incident_affected_pk', ['incident_id', 'kind', 'ref'])
    .execute();
  await db.schema.createIndex('incident_affected_ref').on('incident_affected').columns(['kind', 'ref']).execute();
  await db.schema
    .createTable('incident_acks')
    .addColumn('incident_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    /** the public update acknowledged (a newer one shows the banner again) */
    .addColumn('update_id', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('incident_acks_pk', ['incident_id', 'user_id'])
    .execute();
}
