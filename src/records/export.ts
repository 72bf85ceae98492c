import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { AuditPage } from '../audit/index.js';
import type { ReceiptView } from '../seals/index.js';
import type { VaultCaller, VaultService } from '../vault/index.js';

/** Format of a workspace export (docs/formats.md "Workspace export"). */
export const EXPORT_TYPE = 'coffre.workspace-export';
export const EXPORT_VERSION = 1;

/** What the export reads besides the vault, each as one small port (wired by main.ts). */
export interface ExportSources {
  vault: VaultService;
  workspaceName(id: string): Promise<string>;
  /** the audit records naming the workspace, newest first, by page */
  auditAbout(workspaceId: string, page: { limit: number; cursor?: string }): Promise<AuditPage>;
  receipt(documentId: string, version: number): Promise<ReceiptView | null>;
  /** every daily audit seal, oldest first */
  seals(): Promise<{ day: string; body: string; signature: string; token: string | null }[]>;
  /** every certificate the sealing key has had, newest first */
  certificates(): Promise<{ fingerprint: string; pem: string }[]>;
  /** signs with the sealing key (DER ECDSA) */
  sign(data: Buffer): Promise<Buffer>;
  applianceId: string;
  now(): number;
}

interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

interface VersionEntry {
  version: number;
  size: number;
  sha256: string;
  mediaType: string;
  depositedAt: string;
  depositor: string;
  path: string;
  receipt: string | null;
}

const AUDIT_PAGE = 1000;

/** A file name for the archive: the document's own, made safe (no path, no control characters). */
export function safeName(name: string): string {
  const s = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\]/g, '_')
    .replace(/^\.+/, '_');
  const b = Buffer.from(s, 'utf8');
  if (b.length <= 120) return s || '_';
  return b
    .subarray(0, 120)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

const csvCell = (v: string | number | null) => {
  const s = v === null ? '' : String(v);
  // a leading = + - @ would be a formula in a spreadsheet: quoted and prefixed
  const t = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r']/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
};

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
  const files: ManifestFile[] = [];
  const add = async (path: string, data: string | Buffer) => {
    const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    files.push({ path, size: b.length, sha256: crypto.createHash('sha256').update(b).digest('hex') });
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: path, size: b.length, mtime: new Date(src.now()) }, b, (e) => (e ? reject(e) : resolve())),
    );
  };
  const addStream = async (path: string, size: number, sha256: string, stream: Readable) => {
    files.push({ path, size, sha256 });
    const entry = pack.entry({ name: path, size, mtime: new Date(src.now()) });
    await pipeline(stream, entry);
  };
  const folders = await src.vault.listFolders(c, workspaceId, 'all');
  await add('README.txt', README);
  await add(
    'workspace.json',
    `${JSON.stringify(
      {
        type: EXPORT_TYPE,
        version: EXPORT_VERSION,
        applianceId: src.applianceId,
        workspace: { id: workspaceId, name: await src.workspaceName(workspaceId) },
        exportedAt: new Date(src.now()).toISOString(),
        exportedBy: c.actor.id,
        folders: folders.map((f) => ({ id: f.id, parentId: f.parentId, name: f.name, createdAt: f.createdAt })),
      },
      null,
      2,
    )}\n`,
  );

  const rows: { documentId: string; name: string; v: VersionEntry }[] = [];
  let documents = 0;
  let bytes = 0;
  let cursor: string | undefined;
  do {
    const page = await src.vault.list(c, workspaceId, { limit: 500, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) {
      const d = await src.vault.get(c, item.id);
      const dir = `documents/${d.id}`;
      const versions: VersionEntry[] = [];
      for (const v of [...d.versions].sort((a, b) => a.version - b.version)) {
        const r = await src.receipt(d.id, v.version);
        versions.push({
          version: v.version,
          size: v.size,
          sha256: v.sha256,
          mediaType: v.mediaType,
          depositedAt: v.createdAt,
          depositor: v.createdBy,
          path: `${dir}/v${v.version}/${safeName(d.name)}`,
          receipt: r ? `${dir}/v${v.version}/receipt.json` : null,
        });
      }
      // the document's metadata first: an importer knows what the contents that follow are
      await add(
        `${dir}/document.json`,
        `${JSON.stringify(
          {
            id: d.id,
            folderId: d.folderId,
            name: d.name,
            description: d.description,
            tags: d.tags,
            createdAt: d.createdAt,
            createdBy: d.createdBy,
            updatedAt: d.updatedAt,
            versions,
          },
          null,
          2,
        )}\n`,
      );
      for (const v of versions) {
        const opened = await src.vault.open(c, d.id, v.version);
        await addStream(v.path, opened.size, opened.sha256, opened.stream);
        bytes += opened.size;
        const r = await src.receipt(d.id, v.version);
        if (r) {
          const base = `${dir}/v${v.version}/receipt.json`;
          await add(base, r.body);
          await add(`${base}.sig`, Buffer.from(r.signature, 'base64'));
          if (r.timestamp.token) await add(`${base}.tsr`, Buffer.from(r.timestamp.token, 'base64'));
        }
        rows.push({ documentId: d.id, name: d.name, v });
      }
      documents += 1;
    }
    cursor = page.next ?? undefined;
  } while (cursor);

  // the audit extract: every record naming the workspace (its documents' records name it too)
  let auditCursor: string | undefined;
  let part = 0;
  do {
    const page = await src.auditAbout(workspaceId, {
      limit: AUDIT_PAGE,
      ...(auditCursor ? { cursor: auditCursor } : {}),
    });
    if (page.events.length || part === 0)
      await add(
        `audit/events-${String(++part).padStart(5, '0')}.jsonl`,
        page.events.map((e) => `${JSON.stringify(e)}\n`).join(''),
      );
    auditCursor = page.nextCursor ?? undefined;
  } while (auditCursor);

  for (const s of await src.seals()) {
    await add(`seals/seal-${s.day}.json`, s.body);
    await add(`seals/seal-${s.day}.json.sig`, Buffer.from(s.signature, 'base64'));
    if (s.token) await add(`seals/seal-${s.day}.json.tsr`, Buffer.from(s.token, 'base64'));
  }
  const certs = await src.certificates();
  for (const cert of certs) await add(`seal-cert-${cert.fingerprint.slice(0, 16)}.pem`, cert.pem);
  if (certs[0]) await add('seal-cert.pem', certs[0].pem);

  const csv = [
    ['document_id', 'version', 'path', 'name', 'size', 'sha256', 'media_type', 'deposited_at', 'depositor', 'receipt'],
    ...rows.map((r) => [
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
    ]),
  ]
    .map((l) => l.map(csvCell).join(','))
    .join('\r\n');
  await add('manifest.csv', `${csv}\r\n`);
  const manifest = Buffer.from(
    `${JSON.stringify(
      {
        type: `${EXPORT_TYPE}.manifest`,
        version: EXPORT_VERSION,
        applianceId: src.applianceId,
        workspaceId,
        exportedAt: new Date(src.now()).toISOString(),
        documents,
        versions: rows.length,
        bytes,
        certificateSha256: certs[0]?.fingerprint ?? null,
        files,
      },
      null,
      2,
    )}\n`,
    'utf8',
  );
  // not in `files`: these three describe the others
  await add('manifest.sha256', files.map((f) => `${f.sha256}  ${f.path}\n`).join(''));
  await add('manifest.json', manifest);
  await add('manifest.json.sig', await src.sign(manifest));
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

Check it with stock tools alone:

  sha256sum -c manifest.sha256
  openssl x509 -in seal-cert.pem -pubkey -noout > seal-pub.pem
  openssl dgst -sha256 -verify seal-pub.pem -signature manifest.json.sig manifest.json
  openssl dgst -sha256 -verify seal-pub.pem -signature documents/ID/v1/receipt.json.sig documents/ID/v1/receipt.json

Load it into another Coffre appliance with \`coffre import FILE\`.
`;
