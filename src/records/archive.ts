import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type tar from 'tar-stream';
import type { AuditPage } from '../audit/index.js';
import type { ReceiptView } from '../seals/index.js';
import type { VaultCaller, VaultService } from '../vault/index.js';

/**
 * The parts every export archive shares (docs/formats.md "Workspace export"): files written into a
 * tar with their SHA-256 kept for the manifest, a document with the versions chosen, the audit
 * extract, the seals and certificates, and the signed manifest that closes the archive.
 */

/** What an export reads besides the vault, each as one small port (wired by main.ts). */
export interface ArchiveSources {
  vault: VaultService;
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

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface VersionEntry {
  version: number;
  size: number;
  sha256: string;
  mediaType: string;
  depositedAt: string;
  depositor: string;
  path: string;
  receipt: string | null;
}

/** One exported version, for the CSV manifest. */
export interface VersionRow {
  workspaceId: string;
  documentId: string;
  name: string;
  v: VersionEntry;
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
const csvLines = (rows: (string | number | null)[][]) =>
  `${rows.map((l) => l.map(csvCell).join(',')).join('\r\n')}\r\n`;

export const jsonFile = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Files into a tar, each with its size and SHA-256 kept for the manifest. */
export class ArchiveWriter {
  readonly files: ManifestFile[] = [];
  constructor(
    private readonly pack: tar.Pack,
    private readonly now: () => number,
  ) {}

  async add(path: string, data: string | Buffer): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.files.push({ path, size: b.length, sha256: crypto.createHash('sha256').update(b).digest('hex') });
    await new Promise<void>((resolve, reject) =>
      this.pack.entry({ name: path, size: b.length, mtime: new Date(this.now()) }, b, (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  }

  /** a content whose size and SHA-256 the vault checks as it reads */
  async addStream(path: string, size: number, sha256: string, stream: Readable): Promise<void> {
    this.files.push({ path, size, sha256 });
    await pipeline(stream, this.pack.entry({ name: path, size, mtime: new Date(this.now()) }));
  }
}

/**
 * One document: its metadata (`documents/ID/document.json`, with only the versions `keep` chose,
 * `extra` fields after its id) then each kept version's original bytes and deposit receipt.
 * Nothing is written when no version is kept. Every content read is audited by the vault.
 */
export async function addDocument(
  w: ArchiveWriter,
  src: ArchiveSources,
  c: VaultCaller,
  workspaceId: string,
  documentId: string,
  keep: (v: { createdBy: string; createdAt: string }) => boolean = () => true,
  extra: Record<string, unknown> = {},
): Promise<{ rows: VersionRow[]; bytes: number }> {
  const d = await src.vault.get(c, documentId);
  const dir = `documents/${d.id}`;
  const versions: VersionEntry[] = [];
  const receipts = new Map<number, ReceiptView>();
  for (const v of [...d.versions].sort((a, b) => a.version - b.version)) {
    if (!keep(v)) continue;
    const r = await src.receipt(d.id, v.version);
    if (r) receipts.set(v.version, r);
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
  if (!versions.length) return { rows: [], bytes: 0 };
  // the document's metadata first: an importer knows what the contents that follow are
  await w.add(
    `${dir}/document.json`,
    jsonFile({
      id: d.id,
      ...extra,
      folderId: d.folderId,
      name: d.name,
      description: d.description,
      tags: d.tags,
      createdAt: d.createdAt,
      createdBy: d.createdBy,
      updatedAt: d.updatedAt,
      versions,
    }),
  );
  const rows: VersionRow[] = [];
  let bytes = 0;
  for (const v of versions) {
    const opened = await src.vault.open(c, d.id, v.version);
    await w.addStream(v.path, opened.size, opened.sha256, opened.stream);
    bytes += opened.size;
    const r = receipts.get(v.version);
    if (r) {
      await w.add(v.receipt!, r.body);
      await w.add(`${v.receipt}.sig`, Buffer.from(r.signature, 'base64'));
      if (r.timestamp.token) await w.add(`${v.receipt}.tsr`, Buffer.from(r.timestamp.token, 'base64'));
    }
    rows.push({ workspaceId, documentId: d.id, name: d.name, v });
  }
  return { rows, bytes };
}

/** Every document of a workspace the caller sees, page by page. */
export async function* documentIds(src: ArchiveSources, c: VaultCaller, workspaceId: string): AsyncIterable<string> {
  let cursor: string | undefined;
  do {
    const page = await src.vault.list(c, workspaceId, { limit: 500, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) yield item.id;
    cursor = page.next ?? undefined;
  } while (cursor);
}

/** The audit extract, `audit/events-NNNNN.jsonl` (newest first), from a pager of records. */
async function addAudit(
  w: ArchiveWriter,
  pager: (page: { limit: number; cursor?: string }) => Promise<AuditPage>,
): Promise<number> {
  let cursor: string | undefined;
  let part = 0;
  let n = 0;
  do {
    const page = await pager({ limit: AUDIT_PAGE, ...(cursor ? { cursor } : {}) });
    if (page.events.length || part === 0)
      await w.add(
        `audit/events-${String(++part).padStart(5, '0')}.jsonl`,
        page.events.map((e) => `${JSON.stringify(e)}\n`).join(''),
      );
    n += page.events.length;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return n;
}

/** The daily seals and the sealing certificates; returns the current certificate's fingerprint. */
async function addProofs(w: ArchiveWriter, src: ArchiveSources): Promise<string | null> {
  for (const s of await src.seals()) {
    await w.add(`seals/seal-${s.day}.json`, s.body);
    await w.add(`seals/seal-${s.day}.json.sig`, Buffer.from(s.signature, 'base64'));
    if (s.token) await w.add(`seals/seal-${s.day}.json.tsr`, Buffer.from(s.token, 'base64'));
  }
  const certs = await src.certificates();
  for (const cert of certs) await w.add(`seal-cert-${cert.fingerprint.slice(0, 16)}.pem`, cert.pem);
  if (certs[0]) await w.add('seal-cert.pem', certs[0].pem);
  return certs[0]?.fingerprint ?? null;
}

/**
 * Closes the archive: `manifest.sha256` (`sha256sum -c` lines), `manifest.json` (`head`, then the
 * list of every file above) and its signature by the sealing key, `manifest.json.sig`.
 */
async function addManifest(w: ArchiveWriter, src: ArchiveSources, head: Record<string, unknown>): Promise<void> {
  const files = [...w.files];
  const manifest = Buffer.from(jsonFile({ ...head, files }), 'utf8');
  // not in `files`: these three describe the others
  await w.add('manifest.sha256', files.map((f) => `${f.sha256}  ${f.path}\n`).join(''));
  await w.add('manifest.json', manifest);
  await w.add('manifest.json.sig', await src.sign(manifest));
}

/** The README's last lines: how to check an archive with stock tools alone. */
export const CHECK_COMMANDS = `Check it with stock tools alone:

  sha256sum -c manifest.sha256
  openssl x509 -in seal-cert.pem -pubkey -noout > seal-pub.pem
  openssl dgst -sha256 -verify seal-pub.pem -signature manifest.json.sig manifest.json
  openssl dgst -sha256 -verify seal-pub.pem -signature documents/ID/v1/receipt.json.sig documents/ID/v1/receipt.json
`;

/**
 * Everything after the documents: the audit extract from `audit`, the seals and certificates,
 * `manifest.csv` (`csv`: header then rows) and the signed manifest (`head`, then the certificate's
 * fingerprint and the list of files). Returns the number of audit records.
 */
export async function finishArchive(
  w: ArchiveWriter,
  src: ArchiveSources,
  o: {
    audit: (page: { limit: number; cursor?: string }) => Promise<AuditPage>;
    csv: (string | number | null)[][];
    head: (auditEvents: number) => Record<string, unknown>;
  },
): Promise<void> {
  const events = await addAudit(w, o.audit);
  const certificateSha256 = await addProofs(w, src);
  await w.add('manifest.csv', csvLines(o.csv));
  await addManifest(w, src, { ...o.head(events), certificateSha256 });
}
