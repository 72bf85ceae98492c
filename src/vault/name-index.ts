import type { Kysely, Transaction } from 'kysely';
import type { VaultSchema } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import { vaultErrors } from './errors.js';

/**
 * Blind index of document names and tags (docs/formats.md "Name search index"). A name is folded
 * (compatibility decomposition, accents and other combining marks removed, lower case, NFKC),
 * cut into words (runs of letters, runs of digits: a reference like `MRK12f6` is found by any
 * of its parts), and every prefix of every word (up to
 * MAX_PREFIX code points) becomes a token; each tag, folded whole, is one token. A token is
 * stored as the first 16 bytes of HMAC-SHA256 under the workspace's index key (`blind:vault.ix.<id>`,
 * a data key wrapped by the HSM's KEK, FieldCipher.blindTokens): no word reaches the disk in
 * clear, and without the HSM no one can compute or test a token. A search hashes the query's
 * words the same way and matches documents holding every one of them: each word of the query is
 * a prefix of a word of the name, case- and accent-insensitively, in any order.
 */
export const NAME_INDEX_FORMAT = 1;
/** longest word prefix indexed (code points); query words are cut to the same length */
export const MAX_PREFIX = 32;
/** words a query may hold (each costs a token lookup); a longer query is refused, never cut: every word must match */
const MAX_QUERY_WORDS = 32;

export type IndexRow = { token: string; document_id: string; kind: 'n' | 't' };

export const foldForSearch = (s: string): string =>
  s
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .normalize('NFKC');
/** Words: runs of letters and runs of digits (`invoice2026-x7` → invoice, 2026, x, 7). */
export const searchWords = (s: string): string[] => foldForSearch(s).match(/\p{L}+|\p{N}+/gu) ?? [];

/** The clear tokens of a name: every prefix of every word (deduplicated). */
export function nameTokens(name: string): string[] {
  const out = new Set<string>();
  for (const w of searchWords(name)) {
    const cps = Array.from(w).slice(0, MAX_PREFIX);
    for (let i = 1; i <= cps.length; i++) out.add(`n\0${cps.slice(0, i).join('')}`);
  }
  return [...out];
}

const tagToken = (t: string) => `t\0${foldForSearch(t)}`;

/** The index purpose (key name) of a workspace: one index key per workspace. */
export const indexPurpose = (workspaceId: string): string => {
  const p = `vault.ix.${workspaceId.toLowerCase()}`;
  if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(p)) throw vaultErrors.workspaceNotFound();
  return p;
};

/** The index rows of a document (its name's word prefixes and its tags), hashed. */
export async function indexRows(
  fields: FieldCipher,
  workspaceId: string,
  documentId: string,
  name: string,
  tags: readonly string[],
): Promise<IndexRow[]> {
  const n = nameTokens(name);
  const t = [...new Set(tags.map(tagToken))];
  const hashed = await fields.blindTokens(indexPurpose(workspaceId), [...n, ...t]);
  const rows = new Map<string, IndexRow>();
  hashed.forEach((token, i) => rows.set(token, { token, document_id: documentId, kind: i < n.length ? 'n' : 't' }));
  return [...rows.values()];
}

/** Replaces a document's index rows and marks it indexed, inside the caller's transaction. */
export async function writeIndex(
  trx: Transaction<VaultSchema> | Kysely<VaultSchema>,
  documentId: string,
  rows: readonly IndexRow[],
): Promise<void> {
  await trx.deleteFrom('vault_name_index').where('document_id', '=', documentId).execute();
  // 3 parameters a row: well under SQLite's limit of bound parameters per statement
  for (let i = 0; i < rows.length; i += 300)
    await trx
      .insertInto('vault_name_index')
      .values(rows.slice(i, i + 300))
      .execute();
  await trx
    .updateTable('vault_documents')
    .set({ name_index: NAME_INDEX_FORMAT })
    .where('id', '=', documentId)
    .execute();
}

/**
 * The hashed tokens a search must all match, or null when the query has no word (only
 * punctuation: the caller then searches without the index).
 */
export async function queryTokens(
  fields: FieldCipher,
  workspaceId: string,
  q: { q?: string | undefined; tag?: string | undefined },
): Promise<string[] | null> {
  const clear: string[] = [];
  if (q.q !== undefined) {
    const words = searchWords(q.q);
    if (words.length === 0) return null;
    if (words.length > MAX_QUERY_WORDS)
      throw vaultErrors.invalidInput(
        `a search holds at most ${MAX_QUERY_WORDS} words (letters and digits count apart)`,
      );
    for (const w of words) clear.push(`n\0${Array.from(w).slice(0, MAX_PREFIX).join('')}`);
  }
  if (q.tag !== undefined) clear.push(tagToken(q.tag));
  return fields.blindTokens(indexPurpose(workspaceId), [...new Set(clear)]);
}
