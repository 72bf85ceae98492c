export type { Database, Db, Dialect } from './types.js';
export type { CoreTables } from './tables.js';
export { scrubDeleted, type ScrubResult } from './scrub.js';
export { openDatabase, type DatabaseHandle } from './connect.js';
export { migrateToLatest, pendingMigrations, MIGRATIONS_DIR } from './migrate.js';
export type * from './schemas.js';
export { postgresToSqlite, sqliteToPostgres } from './copy.js';
export type { ChangeBus } from './notify.js';
export { DbWindowCounters, type WindowCounters } from './counters.js';
