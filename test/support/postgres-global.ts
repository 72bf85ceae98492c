/**
 * vitest globalSetup of the `postgres` project (vitest.config.ts): one throwaway PostgreSQL cluster
 * for the whole run (test/support/postgres.ts), handed to the test files through `inject('postgres')`.
 * Each appliance then gets a database of its own in it (test/support/appliance.ts), so a suite pays
 * a `CREATE DATABASE`, not an initdb.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres, type TestPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: { host: string; port: number; user: string; database: string } | undefined;
  }
}

let pg: TestPostgres | undefined;

export async function setup(project: TestProject): Promise<void> {
  pg = await startPostgres({ maxConnections: 200 });
  project.provide('postgres', { host: pg.host, port: pg.port, user: pg.user, database: pg.database });
}

export async function teardown(): Promise<void> {
  await pg?.stop();
}
