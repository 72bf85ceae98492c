import type { Kysely } from 'kysely';
import type { CoreTables } from './tables.js';
import type { AuditTables } from '../audit/tables.js';
import type { MonitoringTables } from '../monitoring/tables.js';
import type { KeysTables } from '../keys/tables.js';
import type { VaultTables } from '../vault/tables.js';
import type { AuthTables } from '../auth/tables.js';
import type { AccessTables } from '../access/tables.js';
import type { BackupTables } from '../backup/tables.js';
import type { RecordsTables } from '../records/tables.js';
import type { SealsTables } from '../seals/tables.js';
import type { IncidentsTables } from '../incidents/tables.js';

/**
 * Every table of the appliance. Each module adds its table interface here (one line each).
 */
export interface Database
  extends
    CoreTables,
    AuditTables,
    MonitoringTables,
    KeysTables,
    VaultTables,
    AuthTables,
    AccessTables,
    BackupTables,
    RecordsTables,
    SealsTables,
    IncidentsTables {}

export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'postgres';
