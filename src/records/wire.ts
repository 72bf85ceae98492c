import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import type { Auditor } from '../audit/index.js';
import type { Database } from '../db/types.js';
import type { VaultService } from '../vault/index.js';
import { dbActorDirectory } from './actors.js';
import { HistoryService } from './history.js';
import { recordsRoutes } from './routes.js';

export interface RecordsWiring {
  db: Kysely<Database>;
  audit: Auditor;
  vault: VaultService;
}

export interface Records {
  history: HistoryService;
  /** API plugin for /api/v1 */
  api: FastifyPluginAsync;
}

/** Builds the records module from the appliance's modules (composition for main.ts). */
export function wireRecords(o: RecordsWiring): Records {
  const history = new HistoryService({ db: o.db, audit: o.audit, vault: o.vault, actors: dbActorDirectory(o.db) });
  const api: FastifyPluginAsync = async (app) => app.register(recordsRoutes, { history });
  return { history, api };
}
