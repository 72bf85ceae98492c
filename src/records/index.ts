export { wireRecords, retentionGuard, type Records, type RecordsWiring } from './wire.js';
export {
  HistoryService,
  historyKind,
  type HistoryEntry,
  type HistoryKind,
  type HistoryPage,
  type AccessReport,
} from './history.js';
export { recordsErrors } from './errors.js';
export { dbActorDirectory, type ActorDirectory } from './actors.js';
export type { RecordsTables } from './tables.js';
