import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { AppError } from '../shared/errors.js';
import { SyncingFile } from '../shared/syncing-file.js';
import { action, emit, jsonOption, parseNumber, type Io } from './output.js';
import type { IncomingMessage } from 'node:http';
import { clientFromEnv, type Client } from './client.js';
import { receipt } from './receipt.js';

/** Transfers above this size show a progress bar on stderr. */
const PROGRESS_FROM = 4 * 1024 * 1024;

function progress(total: number, label: string): { tick(n: number): void; stop(): void } {
  if (total < PROGRESS_FROM || !process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {value}/{total} MiB {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;
  let done = 0;
  bar.start(mib(total), 0);
  return {
    tick: (n) => {
      done += n;
      bar.update(mib(done));
    },
    stop: () => bar.stop(),
  };
}

/** Pieces read from a file to upload: large, so each costs one read and one TLS write burst. */
const READ_SIZE = 1 << 20;

/** Counts bytes through a pipe (progress) and hashes them. */
class Tap extends Transform {
  readonly hash = crypto.createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super({ highWaterMark: READ_SIZE });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.onBytes(chunk.length);
    cb(null, chunk);
  }
}

/** The JSON reply of a streamed request; API errors become AppErrors with the API's code. */
async function reply(res: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: { error?: { code?: string; message?: string } } & Record<string, unknown> = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON */
  }
  const status = res.statusCode ?? 0;
  if (status >= 400) {
    throw new AppError(
      parsed.error?.code ?? `HTTP_${status}`,
      parsed.error?.message ?? `the appliance answered ${status}`,
      {
        httpStatus: status,
        exitCode: status === 400 || status === 413 || status === 415 ? 2 : 1,
      },
    );
  }
  return parsed;
}

/** RFC 8187 ext-value: how a name, tag or description travels in a header (never in the URL). */
const extValue = (s: string) =>
  `UTF-8''${encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;

const human = (n: number) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${n} bytes`);

interface PutOpts {
  workspace?: string;
  document?: string;
  name?: string;
  folder?: string;
  tag?: string[];
  description?: string;
  type?: string;
  idempotencyKey?: string;
  receiptName?: boolean;
  json?: boolean;
}

async function sha256Of(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: READ_SIZE })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Attempts of one upload when the connection drops before the answer (same Idempotency-Key each time). */
const PUT_ATTEMPTS = 3;

/** A connection lost after the request went out: the appliance may have stored the version. */
function lostAnswer(e: unknown): boolean {
  const code = ((e as { cause?: NodeJS.ErrnoException }).cause ?? (e as NodeJS.ErrnoException)).code;
  return (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (e as Error).message === 'aborted'
  );
}

/**
 * `coffre doc put`: streams a file up (chunked), with its SHA-256 sent as a `Content-Digest`
 * trailer computed while it is read: the appliance refuses to commit a version whose bytes differ
 * from what was read here.
 */
async function put(io: Io, client: Client, file: string, o: PutOpts): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new AppError('USAGE', `cannot read ${file}`, { exitCode: 2, hint: 'give the path of a readable file' });
  }
  if (!st.isFile()) throw new AppError('USAGE', `${file} is not a regular file`, { exitCode: 2 });
  if (!o.workspace && !o.document)
    throw new AppError('USAGE', 'give --workspace ID (new document) or --document ID (new version)', { exitCode: 2 });
  // ids and the media type in the URL; the name, tags and description in headers (URLs get logged)
  const q = new URLSearchParams();
  const meta: Record<string, string> = {};
  let url: string;
  if (o.document) {
    url = `/documents/${encodeURIComponent(o.document)}/versions`;
  } else {
    url = `/workspaces/${encodeURIComponent(o.workspace!)}/documents`;
    meta['content-disposition'] = `attachment; filename*=${extValue(o.name ?? path.basename(file))}`;
    if (o.folder) q.set('folderId', o.folder);
    if (o.tag?.length) meta['coffre-tags'] = o.tag.map(extValue).join(', ');
    if (o.description !== undefined) meta['coffre-description'] = extValue(o.description);
  }
  if (o.type) q.set('type', o.type);
  if (o.receiptName) meta['coffre-receipt-name'] = 'include';
  // one key per file: a retry after a lost answer gets the version the first attempt stored
  const idempotencyKey = o.idempotencyKey ?? crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return await putOnce(
        io,
        client,
        file,
        st.size,
        `${url}${q.size ? `?${q.toString()}` : ''}`,
        meta,
        idempotencyKey,
        o.json,
      );
    } catch (e) {
      if (attempt >= PUT_ATTEMPTS || !lostAnswer(e)) throw e;
      process.stderr.write(
        `connection lost before the answer; retrying (${attempt}/${PUT_ATTEMPTS - 1}) with the same Idempotency-Key\n`,
      );
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

async function putOnce(
  io: Io,
  client: Client,
  file: string,
  size: number,
  url: string,
  meta: Record<string, string>,
  idempotencyKey: string,
  json: boolean | undefined,
): Promise<void> {
  const bar = progress(size, 'upload');
  const tap = new Tap((n) => bar.tick(n));
  try {
    const res = await client.raw('POST', url, {
      headers: {
        'content-type': 'application/octet-stream',
        trailer: 'content-digest',
        'idempotency-key': idempotencyKey,
        ...meta,
      },
      body: fs.createReadStream(file, { highWaterMark: READ_SIZE }).pipe(tap),
      trailers: () => ({ 'content-digest': `sha-256=:${tap.hash.copy().digest('base64')}:` }),
    });
    const r = (await reply(res)) as unknown as {
      id: string;
      version: number;
      sha256: string;
      size: number;
      receipt?: string;
    };
    // a replayed answer may come before this attempt's body was read: hash the whole file instead
    const local = res.headers['idempotent-replayed'] === 'true' ? await sha256Of(file) : tap.hash.digest('hex');
    if (r.sha256 !== local)
      throw new AppError('INTEGRITY', 'the appliance reports another SHA-256 than the file sent', { exitCode: 1 });
    emit(
      io,
      json,
      { id: r.id, version: r.version, sha256: r.sha256, size: r.size, ...(r.receipt ? { receipt: r.receipt } : {}) },
      `stored ${file} as document ${r.id} version ${r.version} (${human(r.size)}, sha256 ${r.sha256})`,
    );
  } finally {
    bar.stop();
  }
}

/**
 * `coffre doc get`: streams a version down into `<out>.partial`, checks its SHA-256 against the
 * `Repr-Digest` the appliance recorded at upload, fsyncs, then renames it to `<out>`. A mismatch or
 * a cut transfer leaves nothing at `<out>`.
 */
async function get(
  io: Io,
  client: Client,
  id: string,
  o: { version?: number; output: string; json?: boolean },
): Promise<void> {
  const out = path.resolve(o.output);
  const partial = `${out}.partial`;
  const res = await client.raw(
    'GET',
    `/documents/${encodeURIComponent(id)}/content${o.version ? `?version=${o.version}` : ''}`,
    { headers: { accept: 'application/octet-stream' } },
  );
  if ((res.statusCode ?? 0) >= 400) await reply(res);
  const size = Number(res.headers['content-length'] ?? 0);
  const m = /sha-256=:([A-Za-z0-9+/=]+):/.exec(String(res.headers['repr-digest'] ?? ''));
  if (!m) {
    res.destroy();
    throw new AppError('INTEGRITY', 'the appliance sent no Repr-Digest', { exitCode: 1 });
  }
  const expected = Buffer.from(m[1]!, 'base64').toString('hex');
  const bar = progress(size, 'download');
  const tap = new Tap((n) => bar.tick(n));
  try {
    // written in batches (writev) and synced in the background as it comes, so the fdatasync
    // before the rename only waits for the tail; the response's pieces are freed once written
    await pipeline(res, tap, new SyncingFile(partial, { flags: 'w', free: true }));
    const got = tap.hash.digest('hex');
    if (got !== expected || tap.bytes !== size)
      throw new AppError('INTEGRITY', `downloaded content does not match its SHA-256 (${tap.bytes} of ${size} bytes)`, {
        exitCode: 1,
        hint: 'try again; if it persists, the stored copy is damaged: restore it from a backup',
      });
    fs.renameSync(partial, out);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw (e as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' || (e as Error).message === 'aborted'
      ? new AppError('TRANSFER_FAILED', 'the download was cut before the end; nothing was written', {
          exitCode: 1,
          cause: e,
        })
      : e;
  } finally {
    bar.stop();
  }
  const version = Number(res.headers['x-coffre-version'] ?? o.version ?? 0);
  emit(
    io,
    o.json,
    { id, version, sha256: expected, size, file: out },
    `wrote ${out} (${human(size)}, version ${version}, sha256 verified)`,
  );
}

async function list(
  io: Io,
  client: Client,
  o: { workspace: string; q?: string; tag?: string; folder?: string; trash?: boolean; json?: boolean },
): Promise<void> {
  const items: { id: string; name: string; version: number; size: number; updatedAt: string; tags: string[] }[] = [];
  let cursor: string | null = null;
  const base = `/workspaces/${encodeURIComponent(o.workspace)}/documents`;
  // a search's text and tag are confidential: they travel in the body, never in the URL
  const search = o.q !== undefined || o.tag !== undefined;
  do {
    const f: Record<string, string | number | boolean> = {
      limit: 1000,
      ...(o.folder ? { folderId: o.folder } : {}),
      ...(o.trash ? { trash: true } : {}),
      ...(cursor ? { cursor } : {}),
    };
    type Page = { items: typeof items; next: string | null };
    const page: Page = search
      ? await client.json<{ items: typeof items; next: string | null }>('POST', `${base}/search`, {
          ...f,
          ...(o.q !== undefined ? { q: o.q } : {}),
          ...(o.tag !== undefined ? { tag: o.tag } : {}),
        })
      : await client.json<{ items: typeof items; next: string | null }>(
          'GET',
          `${base}?${new URLSearchParams(Object.entries(f).map(([k, v]) => [k, String(v)])).toString()}`,
        );
    items.push(...page.items);
    cursor = page.next;
  } while (cursor);
  emit(io, o.json, { documents: items }, () =>
    items.length === 0
      ? 'no documents'
      : items
          .map(
            (d) =>
              `${d.id}  v${d.version}  ${String(d.size).padStart(12)}  ${d.updatedAt}  ${d.name}${d.tags.length ? `  [${d.tags.join(', ')}]` : ''}`,
          )
          .join('\n'),
  );
}

export function registerDoc(program: Command, io: Io): void {
  const doc = program
    .command('doc')
    .description('documents of a workspace (client: COFFRE_URL, COFFRE_TOKEN, COFFRE_CA)');
  doc
    .command('put')
    .description('upload a file as a new document, or as a new version with --document')
    .argument('<file>')
    .option('--workspace <id>', 'workspace of the new document')
    .option('--document <id>', 'upload a new version of this document')
    .option('--name <name>', 'document name (default: the file name)')
    .option('--folder <id>', 'folder of the new document')
    .option('--tag <tag...>', 'tags of the new document')
    .option('--description <text>', 'description of the new document')
    .option('--type <media-type>', 'media type of the content')
    .option('--receipt-name', "put the document's name in the deposit receipt (left out by default)")
    .option(
      '--idempotency-key <key>',
      'sent as Idempotency-Key (default: a fresh UUID): a script retrying with the same key gets the version already stored instead of a duplicate',
    )
    .addOption(jsonOption())
    .action(action(io, async (file: string, o: PutOpts) => put(io, clientFromEnv({ needToken: true }), file, o)));
  doc
    .command('get')
    .description('download a document (newest version unless --version); its SHA-256 is verified')
    .argument('<id>')
    .addOption(new Option('--version <n>', 'version number').argParser(parseNumber('--version', 1, 2 ** 31, true)))
    .requiredOption('-o, --output <file>', 'where to write it')
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { version?: number; output: string; json?: boolean }) =>
        get(io, clientFromEnv({ needToken: true }), id, o),
      ),
    );
  doc
    .command('receipt')
    .description(
      'the signed (and timestamped) deposit receipt of a version, written as files an auditor checks with openssl alone',
    )
    .argument('<id>')
    .addOption(new Option('--version <n>', 'version number').argParser(parseNumber('--version', 1, 2 ** 31, true)))
    .requiredOption(
      '-o, --output <dir>',
      'directory to write the receipt, signature, certificate, token and README into',
    )
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { version?: number; output: string; json?: boolean }) =>
        receipt(io, clientFromEnv({ needToken: true }), id, o),
      ),
    );
  doc
    .command('list')
    .description('list (or search) the documents of a workspace')
    .requiredOption('--workspace <id>', 'workspace id')
    .option('--q <text>', 'names containing this text')
    .option('--tag <tag>', 'documents with this tag')
    .option('--folder <id>', 'a folder id, or root')
    .option('--trash', 'list the trash')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (o: { workspace: string; q?: string; tag?: string; folder?: string; trash?: boolean; json?: boolean }) =>
          list(io, clientFromEnv({ needToken: true }), o),
      ),
    );
}
