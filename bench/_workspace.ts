import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initAppliance } from '../src/init.js';
import { openAppliance, type Appliance } from '../src/main.js';
import type { Actor } from '../src/http/index.js';
import { createLogger } from '../src/shared/logger.js';

/**
 * A throwaway appliance in a temporary data dir with one member (`bench`) owning one workspace,
 * for the benches that drive the appliance in process; closed and removed whatever happens.
 */
export async function withBenchWorkspace<T>(
  prefix: string,
  fn: (b: { a: Appliance; actor: Actor; workspaceId: string }) => Promise<T>,
): Promise<T> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    await initAppliance({
      dataDir,
      jurisdiction: 'FR',
      timeZone: 'UTC',
      hostnames: ['localhost'],
      actor: 'local:bench',
    });
    const a = await openAppliance({ dataDir, log: createLogger({ level: 'silent', destination: 'stderr' }) });
    try {
      const inv = await a.identity.accounts.invite(
        { username: 'bench', email: 'bench@example.test', role: 'member' },
        'local:bench',
        {},
      );
      const actor: Actor = {
        id: `user:${inv.user.id}`,
        kind: 'user',
        userId: inv.user.id,
        username: 'bench',
        roles: ['member'],
      };
      const ws = await a.identity.workspaces.create(actor, { name: 'Bench' }, {});
      return await fn({ a, actor, workspaceId: ws.id });
    } finally {
      await a.close();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
