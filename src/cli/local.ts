import { openAppliance, type Appliance } from '../main.js';
import { resolveDataDir } from '../config/index.js';
import { createLogger } from '../shared/logger.js';

/**
 * Runs `fn` on the appliance of a local data dir (`--data-dir`, else COFFRE_DATA_DIR, else the
 * default), logging warnings to stderr, and closes it whatever happens. `migrate: false` for
 * commands that must not change the schema (verification, export).
 */
export async function withAppliance<T>(
  dataDir: string | undefined,
  fn: (a: Appliance) => Promise<T>,
  o: { migrate?: boolean; quiet?: boolean } = {},
): Promise<T> {
  const a = await openAppliance({
    dataDir: resolveDataDir(dataDir),
    migrate: o.migrate ?? true,
    log: createLogger({ level: o.quiet ? 'error' : 'warn', destination: 'stderr' }),
  });
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}
