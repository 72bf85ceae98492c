import type { Kysely } from 'kysely';
import type { VaultSchema } from '../db/index.js';

/**
 * For backups: the blob ids a database references, so a snapshot holds exactly the blobs its
 * database needs. Pass the SNAPSHOT's database (e.g. the `VACUUM INTO` copy), not the live one:
 * blobs are write-once, so every id listed exists in the store unless purged after the snapshot.
 * Streams in id order, in pages, so memory stays flat at any number of versions.
 */
export async function* referencedBlobIds(db: Kysely<VaultSchema>, pageSize = 1000): AsyncGenerator<string> {
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('vault_versions')
      .select('blob_id')
      .where('blob_id', '>', after)
      .orderBy('blob_id')
      .limit(pageSize)
      .execute();
    for (const r of rows) yield r.blob_id;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.blob_id;
  }
}
