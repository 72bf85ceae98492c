import SQLite from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import crypto from 'node:crypto';
import type { DatabaseHandle } from '../src/db/index.js';
import type { FieldCipher } from '../src/keys/types.js';
import { ctx, fieldScope } from '../src/vault/core.js';
import { NAME_INDEX_FORMAT, indexPurpose, indexRows, type IndexRow } from '../src/vault/name-index.js';

/** The name and tags of the bench's n-th document: one in 1,000 a "Board minutes", one in 100 tagged. */
export const benchDoc = (n: number): { name: string; tags: string[] } => ({
  name: n % 1000 === 0 ? `Board minutes ${n}.pdf` : `document-${n}.txt`,
  tags: n % 100 === 0 ? ['legal', `batch-${n % 7}`] : [],
});

/** A batch of documents as written: id, encrypted name, encrypted tags, creation time. */
type Doc = [string, string, string | null, number];

/** Where the seed writes: one batch a transaction, then the secondary indexes built once. */
interface Writer {
  write(docs: Doc[], index: IndexRow[]): Promise<void>;
  finish(): Promise<void>;
  close(): void;
}

/**
 * Seeds `count` documents into a workspace of a closed server's database, as the server writes
 * them: names and tags encrypted by the appliance's field cipher (its AAD binds each ciphertext to
 * its row), index rows made by src/vault/name-index.ts. Fast because it writes 20,000 documents a
 * transaction with secondary indexes dropped and built once at the end, and hashes each distinct
 * token once (a token's hash depends only on the workspace's index key and the token: the cache
 * holds exactly what the index stores). SQLite: through one connection of its own with prepared
 * statements, without fsync (the bench's throwaway file). PostgreSQL: through `db`'s pool, each
 * column of a batch as one array parameter (`unnest`), then VACUUM ANALYZE (the state autovacuum
 * reaches on its own after a bulk load). `fields` must stay open (the appliance's keys); nothing
 * else may write the database meanwhile.
 */
export async function seedDocuments(
  db: DatabaseHandle,
  fields: FieldCipher,
  o: { workspaceId: string; createdBy: string; count: number; at: number },
): Promise<{ seconds: number; writeSeconds: number; indexBuildSeconds: number }> {
  const t0 = performance.now();
  const ws = o.workspaceId;
  // the index key exists before the seeding connection takes the write lock (its creation writes)
  await fields.blindTokens(indexPurpose(ws), ['n\0warm']);
  await fields.encrypt(fieldScope(ws), 'warm', ctx.docName('warm'));
  const known = new Map<string, string>();
  const cached: FieldCipher = {
    encrypt: fields.encrypt.bind(fields),
    decrypt: fields.decrypt.bind(fields),
    blindIndex: fields.blindIndex.bind(fields),
    blindTokens: async (purpose, values) => {
      const fresh = [...new Set(values.filter((v) => !known.has(v)))];
      if (fresh.length) (await fields.blindTokens(purpose, fresh)).forEach((h, i) => known.set(fresh[i]!, h));
      return values.map((v) => known.get(v)!);
    },
  };
  const w = db.dialect === 'sqlite' ? sqliteWriter(db.file!, o) : await postgresWriter(db.db, o);
  let writeS = 0;
  let buildS = 0;
  try {
    const BATCH = 20_000;
    for (let i = 0; i < o.count; i += BATCH) {
      const docs: Doc[] = [];
      const index: IndexRow[] = [];
      for (let n = i; n < Math.min(o.count, i + BATCH); n++) {
        const id = crypto.randomUUID();
        const { name, tags } = benchDoc(n);
        for (const r of await indexRows(cached, ws, id, name, tags)) index.push(r);
        docs.push([
          id,
          await fields.encrypt(fieldScope(ws), name, ctx.docName(id)),
          tags.length ? await fields.encrypt(fieldScope(ws), JSON.stringify(tags), ctx.docTags(id)) : null,
          o.at + n,
        ]);
      }
      const tw = performance.now();
      await w.write(docs, index);
      writeS += (performance.now() - tw) / 1000;
    }
    const tb = performance.now();
    await w.finish();
    buildS = (performance.now() - tb) / 1000;
  } finally {
    w.close();
  }
  return { seconds: (performance.now() - t0) / 1000, writeSeconds: writeS, indexBuildSeconds: buildS };
}

type Target = { workspaceId: string; createdBy: string };

function sqliteWriter(file: string, o: Target): Writer {
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1000000');
  // the index rows go to a table of their own first, then into the primary key's b-tree in its
  // order (appends)
  const indexes = db
    .prepare(
      `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
         AND tbl_name IN ('vault_documents', 'vault_name_index')`,
    )
    .all() as { name: string; sql: string }[];
  for (const i of indexes) db.exec(`DROP INDEX "${i.name}"`);
  db.exec('CREATE TEMP TABLE seed_index (token TEXT, document_id TEXT, kind TEXT)');
  const doc = db.prepare(
    `INSERT INTO vault_documents (id, workspace_id, folder_id, name_enc, description_enc, tags_enc, name_index,
       head_version, head_size, created_at, created_by, updated_at, trashed_at, trashed_by, purged_at)
     VALUES (?, ?, NULL, ?, NULL, ?, ${NAME_INDEX_FORMAT}, 1, 1, ?, ?, ?, NULL, NULL, NULL)`,
  );
  const ix = db.prepare('INSERT INTO temp.seed_index (token, document_id, kind) VALUES (?, ?, ?)');
  const write = db.transaction((docs: Doc[], index: IndexRow[]) => {
    for (const [id, nameEnc, tagsEnc, at] of docs) doc.run(id, o.workspaceId, nameEnc, tagsEnc, at, o.createdBy, at);
    for (const r of index) ix.run(r.token, r.document_id, r.kind);
  });
  return {
    write: async (docs, index) => void write(docs, index),
    finish: async () => {
      db.transaction(() => {
        db.exec(
          `INSERT INTO vault_name_index (token, document_id, kind)
             SELECT token, document_id, kind FROM temp.seed_index ORDER BY token, document_id`,
        );
        for (const i of indexes) db.exec(i.sql);
      })();
      db.exec('DROP TABLE temp.seed_index');
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    close: () => db.close(),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tables by name, outside a module's view
async function postgresWriter(db: Kysely<any>, o: Target): Promise<Writer> {
  // secondary indexes only: those behind a constraint (the primary keys) stay
  const indexes = (
    await sql<{ name: string; def: string }>`
      SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
       WHERE i.schemaname = current_schema() AND i.tablename IN ('vault_documents', 'vault_name_index')
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`.execute(db)
  ).rows;
  for (const i of indexes) await sql`DROP INDEX ${sql.id(i.name)}`.execute(db);
  return {
    write: (docs, index) =>
      db.transaction().execute(async (trx) => {
        await sql`SET LOCAL synchronous_commit = off`.execute(trx);
        await sql`
          INSERT INTO vault_documents (id, workspace_id, folder_id, name_enc, description_enc, tags_enc, name_index,
            head_version, head_size, created_at, created_by, updated_at, trashed_at, trashed_by, purged_at)
          SELECT d.id, ${o.workspaceId}, NULL, d.name_enc, NULL, d.tags_enc, ${sql.lit(NAME_INDEX_FORMAT)}, 1, 1,
                 d.at, ${o.createdBy}, d.at, NULL, NULL, NULL
            FROM unnest(${docs.map((d) => d[0])}::text[], ${docs.map((d) => d[1])}::text[],
                        ${docs.map((d) => d[2])}::text[], ${docs.map((d) => d[3])}::bigint[])
                 AS d(id, name_enc, tags_enc, at)`.execute(trx);
        await sql`
          INSERT INTO vault_name_index (token, document_id, kind)
          SELECT * FROM unnest(${index.map((r) => r.token)}::text[], ${index.map((r) => r.document_id)}::text[],
                               ${index.map((r) => r.kind)}::text[])`.execute(trx);
      }),
    finish: async () => {
      for (const i of indexes) await sql.raw(i.def).execute(db);
      await sql`VACUUM ANALYZE vault_documents, vault_name_index`.execute(db);
    },
    close: () => undefined,
  };
}
