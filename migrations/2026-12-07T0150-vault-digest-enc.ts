import type { Kysely } from 'kysely';

/**
 * The plaintext SHA-256 of a version confirms a guessed document: it is now kept as a field
 * ciphertext (`sha256_enc`, context `vault_versions.sha256:<version id>`) and `sha256` holds ''.
 * A migration cannot reach the HSM, so rows written before this keep their digest in `sha256`
 * until the `vault.seal-digests` job (run at start) encrypts them. Frozen once landed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('vault_versions').addColumn('sha256_enc', 'text').execute();
}
