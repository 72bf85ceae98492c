/**
 * A whole appliance for tests: `initAppliance` into a temp data dir with a fresh SoftHSM2 token
 * (test/support/softhsm.ts; read its note on the one-configuration-per-process constraint), then
 * `openAppliance`. Close it in teardown; the data dir is removed then.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initAppliance, type InitResult } from '../../src/init.js';
import { openAppliance, type Appliance, type ApplianceOptions } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestToken, type TestToken } from './softhsm.js';
import { inject } from 'vitest';
import { createTestDatabase, postgresConfig, startPostgres, type TestPostgres } from './postgres.js';

export interface TestAppliance {
  dataDir: string;
  init: InitResult;
  token: TestToken;
  appliance: Appliance;
  close(): Promise<void>;
}

export async function createTestAppliance(
  o: Partial<Omit<ApplianceOptions, 'dataDir'>> & { token?: TestToken; keep?: boolean } = {},
): Promise<TestAppliance> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-test-'));
  const token = o.token ?? createTestToken();
  const init = await initAppliance({
    dataDir,
    jurisdiction: 'FR',
    timeZone: 'UTC',
    hostnames: ['localhost'],
    actor: 'local:test',
    hsm: token.section,
  });
  // COFFRE_TEST_DIALECT=postgres (the `postgres` project of vitest.config.ts): the same tests on
  // PostgreSQL, a database of its own in the run's cluster (or a cluster of its own when run without
  // the project), written into config.json so that CLI processes started by a test use it too
  const pg = dialect() === 'postgres' && !o.env?.COFFRE_CFG_database ? await testPostgres() : undefined;
  if (pg) {
    const file = path.join(dataDir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    cfg.database = postgresConfig(pg);
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
  const appliance = await openAppliance({
    log: createLogger({ level: 'silent', destination: 'stderr' }),
    ...o,
    ...(o.env ? { env: { ...runSettings(), ...o.env } } : {}),
    dataDir,
  }).catch(async (e: unknown) => {
    await pg?.stop();
    throw e;
  });
  return {
    dataDir,
    init,
    token,
    appliance,
    close: async () => {
      await appliance.close();
      await pg?.stop();
      if (!o.keep) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The run's settings for every appliance (vitest.config.ts: an HSM call's deadline on a busy
 * machine), also for one given an environment of its own, which would otherwise replace the
 * process's; that environment may still set them itself.
 */
const runSettings = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[0] === 'COFFRE_CFG_keys__callTimeoutMs' && !!e[1],
    ),
  );

/** The dialect this run's appliances use: `postgres` in the `postgres` project (vitest.config.ts). */
export const dialect = (): 'sqlite' | 'postgres' =>
  process.env.COFFRE_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

/** A database for one appliance: in the run's shared cluster, else in a cluster of its own. */
async function testPostgres(): Promise<Omit<TestPostgres, 'stop'> & { stop(): Promise<void> }> {
  const shared = inject('postgres');
  if (shared) {
    const d = await createTestDatabase(shared);
    return { ...d, stop: d.drop };
  }
  return startPostgres();
}
