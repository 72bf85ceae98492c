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
import { startPostgres, type TestPostgres } from './postgres.js';

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
  // COFFRE_TEST_DIALECT=postgres: the same tests on a throwaway PostgreSQL cluster (docs/scale-out.md),
  // written into config.json so that CLI processes started by a test use it too
  let pg: TestPostgres | undefined;
  if (process.env.COFFRE_TEST_DIALECT === 'postgres' && !o.env?.COFFRE_CFG_database) {
    pg = await startPostgres();
    const file = path.join(dataDir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    cfg.database = {
      type: 'postgres',
      host: pg.host,
      port: pg.port,
      database: pg.database,
      user: pg.user,
      ssl: false,
      maxConnections: 8,
    };
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
  const appliance = await openAppliance({
    log: createLogger({ level: 'silent', destination: 'stderr' }),
    ...o,
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
