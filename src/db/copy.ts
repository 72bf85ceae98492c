import { sql, type Kysely, type Transaction } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- every table, by name
type AnyDb = Kysely<any>;
import { AppError } from '../shared/errors.js';

/**
 * Row-for-row copies between the two dialects, over one schema (the same migrations built both
 * sides: src/db/pg-schema.ts maps the column types). Backups of a PostgreSQL deployment use them
 * to keep one archive format: the archive's database member stays a SQLite file.
 *
 * - `postgresToSqlite`: every row of a PostgreSQL database as of ONE snapshot (a `REPEATABLE READ`,
 *   `READ ONLY` transaction: the same guarantee as `pg_dump`), read through a server-side cursor
 *   (bounded memory), into a migrated SQLite file.
 * - `sqliteToPostgres`: a SQLite file into a freshly migrated PostgreSQL database, in one
 *   transaction (all or nothing), parents before children, identity sequences moved past the
 *   highest id.
 */

/** rows per round trip (and per insert statement) */
const BATCH = 500;
/** the migrator's own lock table: never copied */
const MIGRATION_LOCK = 'coffre_migrations_lock';

interface Table {
  name: string;
  columns: string[];
  /** tables this one references (foreign keys), itself excluded */
  parents: string[];
  /** a column referencing this table's own `to` column (a tree), if any */
  selfRef?: { from: string; to: string };
}

/** The SQLite file's tables with their columns and foreign keys, parents before children. */
async function sqliteTables(db: AnyDb): Promise<Table[]> {
  const names = (
    await sql<{
      name: string;
    }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`.execute(db)
  ).rows.map((r) => r.name);
  const tables: Table[] = [];
  for (const name of names) {
    if (name === MIGRATION_LOCK) continue;
    const cols = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${name}) ORDER BY cid`.execute(db);
    const fks = await sql<{
      table: string;
      from: string;
      to: string;
    }>`SELECT "table", "from", "to" FROM pragma_foreign_key_list(${name})`.execute(db);
    const self = fks.rows.find((f) => f.table === name);
    tables.push({
      name,
      columns: cols.rows.map((c) => c.name),
      parents: [...new Set(fks.rows.map((f) => f.table).filter((t) => t !== name))],
      ...(self ? { selfRef: { from: self.from, to: self.to } } : {}),
    });
  }
  // parents first (a table's foreign keys point at tables already filled)
  const out: Table[] = [];
  const placed = new Set<string>();
  while (out.length < tables.length) {
    const next = tables.filter((t) => !placed.has(t.name) && t.parents.every((p) => placed.has(p)));
    if (!next.length) throw new Error('the schema has a cycle of foreign keys between tables');
    for (const t of next) {
      out.push(t);
      placed.add(t.name);
    }
  }
  return out;
}

const ident = (s: string) => sql.id(s);
const columnList = (cols: string[]) =>
  sql.join(
    cols.map((c) => ident(c)),
    sql`, `,
  );

async function insertRows(db: AnyDb | Transaction<any>, t: Table, rows: Record<string, unknown>[]): Promise<void> {
  // at most ~10,000 bound values a statement (SQLite's limit is 32,766, PostgreSQL's 65,535)
  const per = Math.max(1, Math.floor(10_000 / t.columns.length));
  for (let i = 0; i < rows.length; i += per) await insertSome(db, t, rows.slice(i, i + per));
}

async function insertSome(db: AnyDb | Transaction<any>, t: Table, rows: Record<string, unknown>[]): Promise<void> {
  if (!rows.length) return;
  const values = rows.map(
    (r) =>
      sql`(${sql.join(
        t.columns.map((c) => sql`${r[c] ?? null}`),
        sql`, `,
      )})`,
  );
  await sql`INSERT INTO ${ident(t.name)} (${columnList(t.columns)}) VALUES ${sql.join(values, sql`, `)}`.execute(db);
}

/**
 * Copies `from` (PostgreSQL) as of one snapshot into `to` (an empty SQLite database, migrated to
 * the same version by the caller), leaving out the tables named in `skip`. Returns rows per table.
 */
export async function postgresToSqlite(
  from: AnyDb,
  to: AnyDb,
  skip: readonly string[] = [],
): Promise<Record<string, number>> {
  const tables = (await sqliteTables(to)).filter((t) => !skip.includes(t.name));
  const counts: Record<string, number> = {};
  // the SQLite side: checks off (rows arrive table by table), one transaction
  await sql`PRAGMA foreign_keys = OFF`.execute(to);
  try {
    await to.transaction().execute(async (dst) => {
      for (const t of tables) await sql`DELETE FROM ${ident(t.name)}`.execute(dst);
      await from
        .transaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute(async (src) => {
          for (const t of tables) {
            counts[t.name] = 0;
            const cursor = `coffre_copy_${t.name}`;
            await sql`DECLARE ${ident(cursor)} NO SCROLL CURSOR FOR SELECT ${columnList(t.columns)} FROM ${ident(t.name)}`.execute(
              src,
            );
            for (;;) {
              const batch = await sql<Record<string, unknown>>`FETCH ${sql.lit(BATCH)} FROM ${ident(cursor)}`.execute(
                src,
              );
              await insertRows(dst, t, batch.rows);
              counts[t.name] = (counts[t.name] ?? 0) + batch.rows.length;
              if (batch.rows.length < BATCH) break;
            }
            await sql`CLOSE ${ident(cursor)}`.execute(src);
          }
        });
    });
  } finally {
    await sql`PRAGMA foreign_keys = ON`.execute(to);
  }
  return counts;
}

/**
 * Copies a SQLite database into `to` (PostgreSQL, migrated to the same version by the caller and
 * holding no appliance yet: what the migrations seed is replaced). One transaction.
 */
export async function sqliteToPostgres(from: AnyDb, to: AnyDb): Promise<Record<string, number>> {
  const tables = await sqliteTables(from);
  const counts: Record<string, number> = {};
  await to.transaction().execute(async (dst) => {
    const users = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM users`.execute(dst);
    const docs = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM vault_documents`.execute(dst);
    if (Number(users.rows[0]!.n) || Number(docs.rows[0]!.n))
      throw new AppError('DB_NOT_EMPTY', 'the PostgreSQL database already holds an appliance (users or documents)', {
        exitCode: 2,
        hint: 'restore into a new, empty database (CREATE DATABASE …)',
      });
    for (const t of [...tables].reverse()) await sql`DELETE FROM ${ident(t.name)}`.execute(dst);
    for (const t of tables) {
      counts[t.name] = 0;
      // a tree (folders) is copied level by level: a row's parent is always in place before it
      const order = t.selfRef
        ? sql`WITH RECURSIVE lvl(k, d) AS (
              SELECT ${ident(t.selfRef.to)}, 0 FROM ${ident(t.name)} WHERE ${ident(t.selfRef.from)} IS NULL
              UNION ALL SELECT c.${ident(t.selfRef.to)}, lvl.d + 1 FROM ${ident(t.name)} c JOIN lvl ON c.${ident(t.selfRef.from)} = lvl.k)
            SELECT ${sql.join(
              t.columns.map((c) => sql`x.${ident(c)}`),
              sql`, `,
            )} FROM ${ident(t.name)} x JOIN lvl ON x.${ident(t.selfRef.to)} = lvl.k ORDER BY lvl.d LIMIT ${sql.lit(BATCH)} OFFSET `
        : sql`SELECT ${columnList(t.columns)} FROM ${ident(t.name)} ORDER BY rowid LIMIT ${sql.lit(BATCH)} OFFSET `;
      for (let offset = 0; ; offset += BATCH) {
        const batch = await sql<Record<string, unknown>>`${order}${sql.lit(offset)}`.execute(from);
        await insertRows(dst, t, batch.rows);
        counts[t.name] = (counts[t.name] ?? 0) + batch.rows.length;
        if (batch.rows.length < BATCH) break;
      }
    }
    // identity columns continue after the copied ids
    const ids = await sql<{ table_name: string; column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND is_identity = 'YES'`.execute(dst);
    for (const r of ids.rows)
      await sql`SELECT setval(pg_get_serial_sequence(${r.table_name}, ${r.column_name}),
        GREATEST((SELECT max(${ident(r.column_name)}) FROM ${ident(r.table_name)}), 0) + 1, false)`.execute(dst);
  });
  return counts;
}
