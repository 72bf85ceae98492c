import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Command } from 'commander';
import { AppError } from '../shared/errors.js';
import { SyncingFile } from '../shared/syncing-file.js';
import { action, emit, jsonOption, parseTime, type Io } from './output.js';
import { clientFromEnv, type Client } from './client.js';

/**
 * `coffre export` and `coffre import` (docs/records.md "Export and import"): one workspace in one
 * request as a POSIX tar of open formats, checked against its manifest; loaded into another
 * appliance through that appliance's API, under the importer's token.
 */

interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}
interface DocMeta {
  id: string;
  folderId: string | null;
  name: string;
  description: string | null;
  tags: string[];
  versions: { version: number; size: number; sha256: string; mediaType: string; path: string }[];
}
interface Checked {
  manifest: { documents: number; versions: number; bytes: number; files: ManifestFile[] };
  /** null in a person's export (user.json), which cannot be imported */
  workspace: {
    workspace: { id: string; name: string };
    folders: { id: string; parentId: string | null; name: string }[];
  } | null;
  documents: Map<string, DocMeta>;
  /** content path → its document and version */
  contents: Map<string, { doc: DocMeta; version: number }>;
}

const MANIFEST_FILES = new Set(['manifest.json', 'manifest.json.sig', 'manifest.sha256']);
const invalid = (why: string) =>
  new AppError('EXPORT_INVALID', `the archive does not match its manifest: ${why}`, {
    exitCode: 1,
    hint: 'nothing was imported; get a fresh export',
  });

/** Reads every entry of a tar file: `each` gets its name and a stream it must consume. */
async function walk(
  file: string,
  each: (name: string, size: number, stream: Readable) => Promise<void>,
): Promise<void> {
  const extract = tar.extract();
  const done = pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), extract);
  for await (const entry of extract) {
    if (entry.header.type !== 'file') {
      entry.resume();
      continue;
    }
    await each(entry.header.name, entry.header.size ?? 0, entry as unknown as Readable);
  }
  await done;
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Pass one: every file's SHA-256 against manifest.json (nothing missing, nothing extra), and the
 * manifest's signature against the certificate it ships with. Keeps the small JSON files.
 */
export async function checkArchive(file: string): Promise<Checked> {
  const got = new Map<string, { size: number; sha256: string }>();
  const small = new Map<string, Buffer>();
  await walk(file, async (name, _size, stream) => {
    const h = crypto.createHash('sha256');
    let n = 0;
    const keep = /(^|\/)(document|workspace)\.json$|^manifest\.json(\.sig)?$|^seal-cert\.pem$/.test(name);
    const parts: Buffer[] = [];
    for await (const c of stream) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
      if (keep) parts.push(c as Buffer);
    }
    if (got.has(name)) throw invalid(`${name} appears twice`);
    got.set(name, { size: n, sha256: h.digest('hex') });
    if (keep) small.set(name, Buffer.concat(parts));
  });
  const mj = small.get('manifest.json');
  if (!mj) throw invalid('no manifest.json');
  const manifest = JSON.parse(mj.toString('utf8')) as Checked['manifest'];
  const listed = new Set<string>();
  for (const f of manifest.files) {
    const g = got.get(f.path);
    if (!g) throw invalid(`${f.path} is missing`);
    if (g.sha256 !== f.sha256 || g.size !== f.size) throw invalid(`${f.path} differs from its SHA-256`);
    listed.add(f.path);
  }
  for (const name of got.keys())
    if (!listed.has(name) && !MANIFEST_FILES.has(name)) throw invalid(`${name} is not in the manifest`);
  const sig = small.get('manifest.json.sig');
  const cert = small.get('seal-cert.pem');
  if (!sig || !cert) throw invalid('the manifest is not signed');
  const key = new crypto.X509Certificate(cert).publicKey;
  if (!crypto.verify('sha256', mj, { key, dsaEncoding: 'der' }, sig))
    throw invalid("the manifest's signature does not verify against seal-cert.pem");
  const ws = small.get('workspace.json');
  if (!ws && !got.has('user.json')) throw invalid('neither workspace.json nor user.json');
  const documents = new Map<string, DocMeta>();
  const contents = new Map<string, { doc: DocMeta; version: number }>();
  for (const [name, b] of small) {
    if (!/^documents\/[^/]+\/document\.json$/.test(name)) continue;
    const d = JSON.parse(b.toString('utf8')) as DocMeta;
    documents.set(d.id, d);
    for (const v of d.versions) {
      const m = manifest.files.find((f) => f.path === v.path);
      if (!m || m.sha256 !== v.sha256) throw invalid(`${v.path} is not the version its document.json describes`);
      contents.set(v.path, { doc: d, version: v.version });
    }
  }
  return {
    manifest,
    workspace: ws ? (JSON.parse(ws.toString('utf8')) as Checked['workspace']) : null,
    documents,
    contents,
  };
}

/** RFC 8187 ext-value (metadata travels in headers, never in the URL). */
const extValue = (s: string) =>
  `UTF-8''${encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;

async function replyJson(res: import('node:http').IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readAll(res)).toString('utf8');
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if ((res.statusCode ?? 0) >= 400) {
    const e = (body.error ?? {}) as { code?: string; message?: string };
    throw new AppError(e.code ?? `HTTP_${res.statusCode}`, e.message ?? `the appliance answered ${res.statusCode}`, {
      exitCode: 1,
    });
  }
  return body;
}

interface ExportOptions {
  workspace?: string;
  user?: string;
  from?: string;
  to?: string;
  out: string;
  json?: boolean;
}

/** The API path of the export asked for: one workspace, or one person's deposits and trail over a period. */
function exportPath(o: ExportOptions): string {
  const usage = (m: string) => new AppError('USAGE', m, { exitCode: 2, hint: 'see coffre export --help' });
  if ((o.workspace === undefined) === (o.user === undefined)) throw usage('give either --workspace ID or --user ID');
  if (o.workspace !== undefined) {
    if (o.from !== undefined || o.to !== undefined) throw usage('--from and --to go with --user');
    return `/workspaces/${encodeURIComponent(o.workspace)}/export`;
  }
  const q = new URLSearchParams();
  const from = o.from === undefined ? undefined : parseTime('--from', o.from);
  const to = o.to === undefined ? undefined : parseTime('--to', o.to);
  if (from !== undefined && to !== undefined && to <= from) throw usage('--to must be after --from');
  if (from !== undefined) q.set('from', new Date(from).toISOString());
  if (to !== undefined) q.set('to', new Date(to).toISOString());
  const qs = q.toString();
  return `/users/${encodeURIComponent(o.user!)}/archive${qs ? `?${qs}` : ''}`;
}

/**
 * `coffre export --workspace ID | --user ID [--from T --to T] --out FILE`: streams the archive to
 * FILE.partial, checks it against its signed manifest, renames it.
 */
async function exportArchive(io: Io, client: Client, o: ExportOptions) {
  const url = exportPath(o);
  const out = path.resolve(o.out);
  if (fs.existsSync(out)) throw new AppError('USAGE', `${out} already exists`, { exitCode: 2 });
  const partial = `${out}.partial`;
  const res = await client.raw('GET', url, { headers: { accept: 'application/x-tar' } });
  if ((res.statusCode ?? 0) >= 400) await replyJson(res);
  try {
    await pipeline(res, new SyncingFile(partial, { flags: 'w' }));
    const c = await checkArchive(partial);
    fs.renameSync(partial, out);
    emit(
      io,
      o.json,
      {
        file: out,
        size: fs.statSync(out).size,
        documents: c.manifest.documents,
        versions: c.manifest.versions,
        bytes: c.manifest.bytes,
        files: c.manifest.files.length,
      },
      `wrote ${out}: ${c.manifest.documents} documents, ${c.manifest.versions} versions, every file checked against the signed manifest`,
    );
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw (e as Error).message === 'aborted' || (e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE'
      ? new AppError('TRANSFER_FAILED', 'the export was cut before the end; nothing was written', { exitCode: 1 })
      : e;
  }
}

/** `coffre import FILE`: checks the archive first, then recreates the workspace through the API. */
async function importWorkspace(io: Io, client: Client, file: string, o: { name?: string; json?: boolean }) {
  if (!fs.existsSync(file)) throw new AppError('USAGE', `cannot read ${file}`, { exitCode: 2 });
  const c = await checkArchive(file);
  if (!c.workspace)
    throw new AppError('USAGE', `${file} is a person's export: only a workspace export can be imported`, {
      exitCode: 2,
    });
  const ws = (await client.json<{ id: string }>('POST', '/workspaces', {
    name: o.name ?? c.workspace.workspace.name,
  })) as { id: string };
  // folders, parents first
  const folderIds = new Map<string, string>();
  let todo = [...c.workspace.folders];
  while (todo.length) {
    const ready = todo.filter((f) => f.parentId === null || folderIds.has(f.parentId));
    if (!ready.length) throw invalid('a folder has a parent that is not in the archive');
    for (const f of ready) {
      const r = await client.json<{ id: string }>('POST', `/workspaces/${ws.id}/folders`, {
        name: f.name,
        parentId: f.parentId === null ? null : folderIds.get(f.parentId),
      });
      folderIds.set(f.id, r.id);
    }
    todo = todo.filter((f) => !ready.includes(f));
  }
  const docIds = new Map<string, string>();
  let versions = 0;
  let bytes = 0;
  await walk(file, async (name, size, stream) => {
    const hit = c.contents.get(name);
    if (!hit) {
      stream.resume();
      await new Promise((r) => stream.once('end', r));
      return;
    }
    const { doc, version } = hit;
    const v = doc.versions.find((x) => x.version === version)!;
    const q = new URLSearchParams({ type: v.mediaType });
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'content-digest': `sha-256=:${Buffer.from(v.sha256, 'hex').toString('base64')}:`,
      'idempotency-key': crypto.randomUUID(),
    };
    let url: string;
    const newId = docIds.get(doc.id);
    if (newId === undefined) {
      if (doc.folderId !== null) q.set('folderId', folderIds.get(doc.folderId) ?? '');
      headers['content-disposition'] = `attachment; filename*=${extValue(doc.name)}`;
      if (doc.tags.length) headers['coffre-tags'] = doc.tags.map(extValue).join(', ');
      if (doc.description !== null) headers['coffre-description'] = extValue(doc.description);
      url = `/workspaces/${ws.id}/documents?${q.toString()}`;
    } else url = `/documents/${newId}/versions?${q.toString()}`;
    const r = (await replyJson(await client.raw('POST', url, { headers, body: stream }))) as { id: string };
    docIds.set(doc.id, r.id);
    versions += 1;
    bytes += size;
  });
  emit(
    io,
    o.json,
    { workspaceId: ws.id, folders: folderIds.size, documents: docIds.size, versions, bytes },
    `imported ${docIds.size} documents (${versions} versions) and ${folderIds.size} folders into workspace ${ws.id}`,
  );
}

export function registerTransfer(program: Command, io: Io): void {
  program
    .command('export')
    .description(
      'client: everything in a workspace (owners), or everything traceable to one person (themselves, or an owner for the workspaces they own), in one archive (tar: files, metadata, receipts, audit extract, seals, signed manifest)',
    )
    .option('--workspace <id>', 'the workspace to export')
    .option('--user <id>', "a person's deposits and the audit records of what they did")
    .option('--from <time>', 'with --user: deposits and records from this date or time (ISO 8601, inclusive)')
    .option('--to <time>', 'with --user: until this date or time (ISO 8601, exclusive)')
    .requiredOption('--out <file>', 'where to write the archive (must not exist)')
    .addOption(jsonOption())
    .action(action(io, async (o: ExportOptions) => exportArchive(io, clientFromEnv({ needToken: true }), o)));
  program
    .command('import')
    .description(
      'client: load an archive made by `coffre export` into this appliance as a new workspace (checked against its signed manifest first)',
    )
    .argument('<file>')
    .option('--name <name>', "the new workspace's name (default: the exported one's)")
    .addOption(jsonOption())
    .action(
      action(io, async (file: string, o: { name?: string; json?: boolean }) =>
        importWorkspace(io, clientFromEnv({ needToken: true }), file, o),
      ),
    );
}
