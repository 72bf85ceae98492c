import type tar from 'tar-stream';
import type { AuditPage } from '../audit/index.js';
import type { VaultCaller } from '../vault/index.js';
import {
  addDocument,
  ArchiveWriter,
  CHECK_COMMANDS,
  documentIds,
  finishArchive,
  jsonFile,
  type ArchiveSources,
  type VersionRow,
} from './archive.js';

/** Format of a workspace export (docs/formats.md "Workspace export"). */
export const EXPORT_TYPE = 'coffre.workspace-export';
export const EXPORT_VERSION = 1;

/** What the export reads besides the vault, each as one small port (wired by main.ts). */
export interface ExportSources extends ArchiveSources {
  workspaceName(id: string): Promise<string>;
  /** the audit records naming the workspace, newest first, by page */
  auditAbout(workspaceId: string, page: { limit: number; cursor?: string }): Promise<AuditPage>;
}

export const MANIFEST_COLUMNS = [
  'document_id',
  'version',
  'path',
  'name',
  'size',
  'sha256',
  'media_type',
  'deposited_at',
  'depositor',
  'receipt',
];
export const manifestRow = (r: VersionRow) => [
  r.documentId,
  r.v.version,
  r.v.path,
  r.name,
  r.v.size,
  r.v.sha256,
  r.v.mediaType,
  r.v.depositedAt,
  r.v.depositor,
  r.v.receipt,
];

/**
 * Streams one workspace as a POSIX tar (docs/records.md "Export and import"): every live document
 * with all its versions (the original bytes), their names, tags, descriptions and folders, each
 * version's deposit receipt, the workspace's audit extract, the daily audit seals and the sealing
 * certificates, then a manifest of every file's SHA-256 (JSON, CSV and `sha256sum -c` form), the
 * JSON signed by the sealing key. Memory stays bounded: contents stream one at a time from the vault
 * (which checks each against its recorded SHA-256 as it reads); other files are small. The caller
 * checked that `c` owns the workspace and audited the export; every content read is audited by the
 * vault as a download.
 */
export async function writeWorkspaceExport(
  src: ExportSources,
  c: VaultCaller,
  workspaceId: string,
  pack: tar.Pack,
): Promise<{ documents: number; versions: number; bytes: number }> {
  const w = new ArchiveWriter(pack, src.now);
  const folders = await src.vault.listFolders(c, workspaceId, 'all');
  await w.add('README.txt', README);
  await w.add(
    'workspace.json',
    jsonFile({
      type: EXPORT_TYPE,
      version: EXPORT_VERSION,
      applianceId: src.applianceId,
      workspace: { id: workspaceId, name: await src.workspaceName(workspaceId) },
      exportedAt: new Date(src.now()).toISOString(),
      exportedBy: c.actor.id,
      folders: folders.map((f) => ({ id: f.id, parentId: f.parentId, name: f.name, createdAt: f.createdAt })),
    }),
  );
  const rows: VersionRow[] = [];
  let documents = 0;
  let bytes = 0;
  for await (const id of documentIds(src, c, workspaceId)) {
    const d = await addDocument(w, src, c, workspaceId, id);
    rows.push(...d.rows);
    bytes += d.bytes;
    documents += 1;
  }
  await finishArchive(w, src, {
    // the audit extract: every record naming the workspace (its documents' records name it too)
    audit: (page) => src.auditAbout(workspaceId, page),
    csv: [MANIFEST_COLUMNS, ...rows.map(manifestRow)],
    head: () => ({
      type: `${EXPORT_TYPE}.manifest`,
      version: EXPORT_VERSION,
      applianceId: src.applianceId,
      workspaceId,
      exportedAt: new Date(src.now()).toISOString(),
      documents,
      versions: rows.length,
      bytes,
    }),
  });
  return { documents, versions: rows.length, bytes };
}

const README = `Coffre workspace export (docs/records.md "Export and import" in the Coffre repository)

A POSIX tar archive, in open formats only:

  workspace.json                  the workspace: id, name, folders (id, parent, name)
  documents/ID/document.json      a document: name, description, tags, folder, dates, its versions
  documents/ID/vN/NAME            the original bytes of version N
  documents/ID/vN/receipt.json    its deposit receipt, signed (.sig) and timestamped (.tsr, RFC 3161)
  audit/events-NNNNN.jsonl        the audit records naming the workspace, newest first
  seals/seal-DAY.json             the daily audit seals (.sig, .tsr)
  seal-cert.pem                   the sealing certificate (seal-cert-<16 hex>.pem: every one it had)
  manifest.csv                    one line per version: path, name, size, SHA-256, dates, receipt
  manifest.sha256                 SHA-256 of every file above
  manifest.json                   the same list and counts, signed by the sealing key (.sig)

${CHECK_COMMANDS}
Load it into another Coffre appliance with \`coffre import FILE\`.
`;
