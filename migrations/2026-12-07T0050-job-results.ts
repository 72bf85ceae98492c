import type { Kysely } from 'kysely';

/**
 * Job runs keep what they returned (`result`, JSON) and, when they failed, the stable error code
 * and the error's details (`error_code`, `error_details`), so a run started remotely reports the
 * same object as one run locally. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('job_runs').addColumn('result', 'text').execute();
  await db.schema.alterTable('job_runs').addColumn('error_code', 'text').execute();
  await db.schema.alterTable('job_runs').addColumn('error_details', 'text').execute();
}
