export type { Database, Db, Dialect } from './types.js';
export { openDatabase, type DatabaseHandle } from './connect.js';
export { migrateToLatest, pendingMigrations, MIGRATIONS_DIR } from './migrate.js';
