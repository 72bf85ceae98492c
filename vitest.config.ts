import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The dialect loop: every test runs on SQLite (project `sqlite`); the suites below run a second
 * time on PostgreSQL (project `postgres`: COFFRE_TEST_DIALECT=postgres, one throwaway cluster for
 * the run, a database of its own per appliance; test/support/appliance.ts). Together they reach
 * every module's database code; the rest of the suite tests what does not depend on the dialect
 * (HTTP, TLS, the HSM, formats) and would only double the run's time. `--project sqlite` or
 * `--project postgres` runs one dialect.
 */
export const POSTGRES_SUITES = [
  'test/access/matrix.test.ts', // every route with every role: access, auth, vault, records, incidents, privacy, backup, monitoring, audit
  'test/access/reviews.test.ts',
  'test/audit/http.test.ts',
  'test/auth/links.test.ts',
  'test/auth/password-oracle.test.ts', // the sign-in throttles' counters
  'test/backup/postgres.test.ts', // backup, restore (into PostgreSQL and SQLite), drill, through the real sshd
  'test/incidents/cli.test.ts', // offline CLI commands on a PostgreSQL data dir
  'test/keys/data-keys.test.ts', // and the data-key caches of several nodes
  'test/monitoring/metrics.test.ts',
  'test/privacy/erasure.test.ts',
  'test/records/retention.test.ts',
  'test/seals/audit-seals.test.ts',
  'test/vault/lifecycle.test.ts',
  'test/vault/name-index.test.ts', // the search's queries (counted, uncounted) and its indexes
  'test/db/counters.test.ts', // the rate counters the nodes share
  'test/core/nodes.test.ts', // two nodes behind HAProxy: PostgreSQL only
];

/**
 * Three files at a time on two cores: measured whole runs, 721 s with three workers against 767 s
 * with two (the suite keeps about 1.7 cores busy; a third file fills what the others leave while
 * they wait on disks, daemons and browsers). The appliances the tests start (in process, or as
 * `coffre` processes, which inherit this environment) give an HSM call 3 s instead of the
 * production 800 ms before answering KEYS_UNAVAILABLE, so a call that waited for a busy CPU is not
 * mistaken for a hung HSM; the tests of that deadline set their own.
 */
const ENV = { COFFRE_CFG_keys__callTimeoutMs: '3000' };

// Every `coffre` process a test starts (several hundred a run; the bundle, about half a second of
// CPU each, bench/RESULTS.md) keeps V8's compiled code in the project's own cache: about a quarter
// less CPU per start. Tests only: the appliance does not load code from a writable cache.
process.env.NODE_COMPILE_CACHE ??= path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'node_modules/.cache/node-compile',
);

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 3,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['test/**/*.test.ts'],
          env: ENV,
          // the image checks need root and a Debian tree: their own CI stage (scripts/test-image-checks)
          exclude: ['test/image/**', '**/node_modules/**', 'test/core/nodes.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: POSTGRES_SUITES,
          env: { ...ENV, COFFRE_TEST_DIALECT: 'postgres' },
          globalSetup: ['test/support/postgres-global.ts'],
        },
      },
    ],
  },
});
