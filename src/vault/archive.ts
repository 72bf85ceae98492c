import type { Readable } from 'node:stream';
import { ZipArchive } from 'archiver';
import type { VaultCore } from './core.js';
import { openContent } from './download.js';
import { vaultErrors } from './errors.js';
import type { VaultCaller } from './types.js';

/** documents one archive may hold (their ids travel in the URL of a GET) */
export const ARCHIVE_MAX_DOCUMENTS = 100;

/**
 * Several documents of one workspace as one zip, streamed: the newest version of each, stored
 * (not compressed: documents are mostly compressed already, and the server's cores stay free).
 * Every document is checked first (member of the
 * workspace, not in the trash), so a refusal is an ordinary error reply; then each is opened in
 * turn, only once the previous entry is written, through the download path: audited as
 * `doc.download` before its bytes are released, checked against its SHA-256 as it streams. A
 * failure after the reply started (integrity, HSM gone, audit refused) aborts the response: the
 * client never receives a complete-looking zip with a bad or missing member (the central
 * directory comes last).
 */
export async function openArchive(
  core: VaultCore,
  c: VaultCaller,
  workspaceId: string,
  ids: readonly string[],
): Promise<Readable> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) throw vaultErrors.invalidInput('name at least one document');
  if (unique.length > ARCHIVE_MAX_DOCUMENTS)
    throw vaultErrors.invalidInput(`an archive holds at most ${ARCHIVE_MAX_DOCUMENTS} documents`);
  const ws = await core.workspace(c, workspaceId, 'viewer', 'doc.download');
  for (const id of unique) {
    const { doc } = await core.document(c, id, 'viewer', 'doc.download');
    if (doc.workspace_id !== ws.id) throw vaultErrors.documentNotFound();
    if (doc.trashed_at !== null) throw vaultErrors.inTrash();
  }
  const zip = new ZipArchive({ store: true });
  const names = new Set<string>();
  let i = 0;
  const fail = (e: unknown) => {
    zip.abort();
    zip.destroy(e as Error);
  };
  const next = async () => {
    if (i === unique.length) {
      zip.finalize().catch(() => undefined); // its failures arrive as 'error' too
      return;
    }
    const o = await openContent(core, c, unique[i++]!, undefined, undefined);
    o.stream.once('error', fail);
    zip.append(o.stream, { name: entryName(o.name, names), date: new Date(core.now()) });
  };
  zip.on('entry', () => void next().catch(fail));
  zip.on('error', fail);
  await next();
  return zip;
}

/** A flat, unique member name: separators replaced, `name (2).ext` for a name seen before. */
export function entryName(name: string, seen: Set<string>): string {
  let base = name.replace(/[/\\]/g, '_');
  if (base === '.' || base === '..') base = '_';
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  let out = base;
  for (let n = 2; seen.has(out.toLowerCase()); n++) out = `${stem} (${n})${ext}`;
  seen.add(out.toLowerCase());
  return out;
}
