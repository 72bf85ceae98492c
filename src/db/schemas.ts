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

/*
 * The database as each module sees it: the core tables, its own, and those of the modules it may
 * read or write by a named exception (docs/architecture.md, "Table ownership"). A module's code takes
 * its own `…Db`, so the compiler refuses a query on any other table; `main.ts` passes the one
 * `Kysely<Database>`, which every narrower view accepts. test/architecture.test.ts checks that the
 * exceptions granted here and the ones listed there are the same.
 */
export interface AccessSchema extends CoreTables, AccessTables, AuthTables {}
export interface AuditSchema extends CoreTables, AuditTables {}
export interface AuthSchema extends CoreTables, AuthTables, AccessTables {}
export interface BackupSchema extends CoreTables, BackupTables, AuditTables, AuthTables, KeysTables, VaultTables {}
export interface IncidentsSchema extends CoreTables, IncidentsTables {}
export interface JobsSchema extends CoreTables {}
export interface KeysSchema extends CoreTables, KeysTables {}
export interface MonitoringSchema
  extends CoreTables, MonitoringTables, AccessTables, AuditTables, AuthTables, BackupTables, VaultTables {}
export interface PrivacySchema
  extends CoreTables, AccessTables, AuditTables, AuthTables, VaultTables, MonitoringTables {}
export interface RecordsSchema extends CoreTables, RecordsTables, AccessTables, AuthTables {}
export interface SealsSchema extends CoreTables, SealsTables {}
export interface VaultSchema extends CoreTables, VaultTables, AccessTables, KeysTables {}

export type AccessDb = Kysely<AccessSchema>;
export type AuditDb = Kysely<AuditSchema>;
export type AuthDb = Kysely<AuthSchema>;
export type BackupDb = Kysely<BackupSchema>;
export type IncidentsDb = Kysely<IncidentsSchema>;
export type JobsDb = Kysely<JobsSchema>;
export type KeysDb = Kysely<KeysSchema>;
export type MonitoringDb = Kysely<MonitoringSchema>;
export type PrivacyDb = Kysely<PrivacySchema>;
export type RecordsDb = Kysely<RecordsSchema>;
export type SealsDb = Kysely<SealsSchema>;
export type VaultDb = Kysely<VaultSchema>;

/**
 * A connection or transaction that another module opened and hands over, so that the receiving module
 * writes its own rows in the same transaction (the audit record of a change, a destruction
 * certificate) or reads its own tables from a snapshot. The receiver views it through its own schema
 * straight away (`const db: AuditDb = trx`) and queries nothing else.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any module's schema
export type SharedDb = Kysely<any>;
