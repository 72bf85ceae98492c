import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import { eventsAbout, type Auditor } from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { VaultService } from '../vault/index.js';
import { dbActorDirectory } from './actors.js';
import { HistoryService } from './history.js';
import { recordsRoutes } from './routes.js';
import { RecordsRequests, type Places } from './requests.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { ExportSources } from './export.js';
import { exportRoutes } from './export-routes.js';
import type { UserExportSources } from './user-export.js';
import { CERTIFICATE_STAMP, type CertificateStamps } from './retention.js';

export interface RecordsWiring {
  db: Kysely<RecordsSchema>;
  clock: Clock;
  audit: Auditor;
  vault: VaultService;
  log: Logger;
  /** what an export reads besides the vault (receipts, seals, names); none: no export routes */
  exportSources?: Omit<ExportSources, 'vault' | 'auditAbout' | 'now'>;
  /** RFC 3161 timestamps of destruction certificates (the same `stamps` given to retentionGuard) */
  stamps?: CertificateStamps;
}

export interface Records {
  history: HistoryService;
  requests: RecordsRequests;
  /** API plugin for /api/v1 */
  api: FastifyPluginAsync;
}

/** Builds the records module from the appliance's modules (composition for main.ts). */
export function wireRecords(o: RecordsWiring): Records {
  const history = new HistoryService({ db: o.db, audit: o.audit, vault: o.vault, actors: dbActorDirectory(o.db) });
  const places: Places = {
    async workspaceOf(scope) {
      if (scope.kind === 'document') return (await o.vault.documentPlace(scope.id))?.workspaceId ?? null;
      if (scope.kind === 'folder') return (await o.vault.folderPlace(scope.id))?.workspaceId ?? null;
      // the identity module's workspaces table: ids only
      const ws = await o.db.selectFrom('workspaces').select('id').where('id', '=', scope.id).executeTakeFirst();
      return ws ? ws.id : null;
    },
  };
  const requests = new RecordsRequests({ db: o.db, clock: o.clock, audit: o.audit, places, requestTtlDays: 7 });
  const exportSources: ExportSources | undefined = o.exportSources && {
    ...o.exportSources,
    vault: o.vault,
    auditAbout: (workspaceId, page) =>
      eventsAbout(o.db, { targets: [{ kind: 'workspace', ids: [workspaceId] }] }, page),
    now: () => o.clock.nowMs(),
  };
  const actors = dbActorDirectory(o.db);
  const userSources: UserExportSources | undefined = exportSources && {
    ...exportSources,
    actorIdsOf: (userId) => actors.actorIdsOf(userId),
    auditAbout: (q, page) => eventsAbout(o.db, q, page),
  };
  const api: FastifyPluginAsync = async (app) => {
    await app.register(recordsRoutes, {
      history,
      requests,
      db: o.db,
      audit: o.audit,
      ...(o.stamps ? { certificateStamp: (id: string) => o.stamps!.of(CERTIFICATE_STAMP, id) } : {}),
    });
    if (exportSources && userSources)
      await app.register(exportRoutes, { sources: exportSources, userSources, db: o.db, audit: o.audit, log: o.log });
  };
  return { history, requests, api };
}

export { retentionGuard } from './retention.js';
