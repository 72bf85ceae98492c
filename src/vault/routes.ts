import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import { PERMISSIONS } from '../access/index.js';
import { auditSource } from '../audit/index.js';
import { errors } from '../shared/errors.js';
import { vaultErrors } from './errors.js';
import { freeWhenWritten } from './streams.js';
import { checkDescription, checkMediaType, checkName, checkTags, decodeComponent, strictUtf8 } from './names.js';
import * as S from './schemas.js';
import type { VaultService } from './service.js';
import type { VaultCaller } from './types.js';
import { checkIdempotencyKey, type UploadBody, type UploadTarget } from './upload.js';
import { handOver } from '../shared/buffers.js';

export interface VaultRoutesOptions {
  vault: VaultService;
  maxUploadBytes: number;
}

const permission = PERMISSIONS.workspaceUse;
const err4xx = { 400: S.ErrorReply, 401: S.ErrorReply, 403: S.ErrorReply, 404: S.ErrorReply, 409: S.ErrorReply };
const tags = ['vault'];

function caller(req: FastifyRequest): VaultCaller {
  if (!req.actor) throw errors.unauthenticated();
  return { actor: req.actor, source: auditSource(req) };
}

/**
 * Query values strictly percent-decoded as UTF-8. Fastify's parser leaves a malformed sequence
 * such as `%FF` as literal text; a name must never be silently taken as something else.
 */
function strictQuery(req: FastifyRequest): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const url = req.raw.url ?? '';
  const i = url.indexOf('?');
  if (i < 0) return out;
  for (const pair of url.slice(i + 1).split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), 'query parameter');
    const v = decodeComponent(eq < 0 ? '' : pair.slice(eq + 1), k);
    out.set(k, [...(out.get(k) ?? []), v]);
  }
  return out;
}

/** Query parameters that would put confidential text in a URL (URLs are logged along the way). */
const CONFIDENTIAL_QUERY = new Map([
  [
    'name',
    "send the name in `Content-Disposition: attachment; filename*=UTF-8''<percent-encoded>` (or as a multipart field)",
  ],
  ['description', "send the description in `Coffre-Description: UTF-8''<percent-encoded>` (or as a multipart field)"],
  ['tags', "send the tags in `Coffre-Tags: UTF-8''<percent-encoded>, UTF-8''<…>` (or as multipart fields)"],
  ['q', 'search with POST /api/v1/workspaces/{workspaceId}/documents/search and the text in the JSON body'],
  ['tag', 'search with POST /api/v1/workspaces/{workspaceId}/documents/search and the tag in the JSON body'],
]);

/**
 * An RFC 8187 ext-value (`UTF-8'[lang]'<percent-encoded>`), strictly decoded as UTF-8. Also takes
 * the characters `encodeURIComponent` leaves as they are (`'()*`), which cannot be ambiguous there.
 */
function decodeExtValue(v: string, what: string): string {
  const m = /^utf-8'[A-Za-z0-9-]*'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+.^_`|~'()*-])*)$/i.exec(v.trim());
  if (!m) throw vaultErrors.invalidName(what, "must be an RFC 8187 value: UTF-8''<percent-encoded UTF-8>");
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    throw vaultErrors.invalidName(what, 'is not valid percent-encoded UTF-8');
  }
}

/**
 * The name from `Content-Disposition` (RFC 6266): `filename*` (RFC 8187, any Unicode) wins over a
 * plain `filename` (printable ASCII only: other bytes have no defined charset in a header).
 */
function dispositionName(h: string | undefined): string | undefined {
  if (h === undefined) return undefined;
  const params = new Map<string, string>();
  const re = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*/gy;
  const type = /^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*/.exec(h);
  if (!type) throw vaultErrors.invalidInput('malformed Content-Disposition header');
  re.lastIndex = type[0].length;
  while (re.lastIndex < h.length) {
    const m = re.exec(h);
    if (!m) throw vaultErrors.invalidInput('malformed Content-Disposition header');
    const k = m[1]!.toLowerCase();
    if (params.has(k)) throw vaultErrors.invalidInput(`Content-Disposition has two \`${k}\` parameters`);
    params.set(k, m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/\\(.)/g, '$1') : m[2]!);
  }
  const ext = params.get('filename*');
  if (ext !== undefined) return decodeExtValue(ext, 'name');
  const plain = params.get('filename');
  if (plain !== undefined && !/^[\x20-\x7e]*$/.test(plain))
    throw vaultErrors.invalidName(
      'name',
      "in `filename` must be printable ASCII; use filename*=UTF-8''<percent-encoded>",
    );
  return plain;
}

/** Upload metadata of a raw body, from headers (never the URL). */
function headerMeta(req: FastifyRequest): Map<string, string[]> {
  const meta = new Map<string, string[]>();
  const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h.join(', ') : h);
  const name = dispositionName(one(req.headers['content-disposition']));
  if (name !== undefined) meta.set('name', [name]);
  const description = one(req.headers['coffre-description']);
  if (description !== undefined) meta.set('description', [decodeExtValue(description, 'description')]);
  const tags = one(req.headers['coffre-tags']);
  if (tags !== undefined)
    meta.set('tags', tags.trim() === '' ? [] : tags.split(',').map((t) => decodeExtValue(t, 'tag')));
  return meta;
}

/** `sha-256=:<base64>:` (RFC 9530) → hex, or undefined when absent. */
function parseDigest(h: string | string[] | undefined): string | undefined {
  if (h === undefined) return undefined;
  const v = Array.isArray(h) ? h.join(',') : h;
  const m = /(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):/i.exec(v);
  if (!m) return undefined;
  const b = Buffer.from(m[1]!, 'base64');
  if (b.length !== 32) throw vaultErrors.invalidInput('malformed sha-256 digest header');
  return b.toString('hex');
}
const toDigest = (hex: string) => `sha-256=:${Buffer.from(hex, 'hex').toString('base64')}:`;

function declaredLength(req: FastifyRequest): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined || req.headers['transfer-encoding'] !== undefined) return undefined;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The body of an upload: the raw request stream (application/octet-stream) or the one file part
 * of a multipart form, with its fields. `finish` checks, once the body ended, that the connection
 * did not carry bytes past Content-Length (they make Node's parser fail and destroy the socket)
 * and picks up a digest sent as a trailer.
 */
async function readUpload(
  req: FastifyRequest,
  max: number,
  isNew: boolean,
): Promise<{ body: UploadBody; meta: Map<string, string[]> }> {
  const query = strictQuery(req);
  const socket = req.raw.socket;
  const finish = async () => {
    await new Promise((r) => setImmediate(r));
    if (socket.destroyed || !req.raw.complete) throw vaultErrors.incomplete();
    const t = parseDigest(req.raw.trailers['content-digest'] ?? req.raw.trailers['repr-digest']);
    return t ? { expectedSha256: t } : {};
  };
  const headerDigest = parseDigest(req.headers['content-digest'] ?? req.headers['repr-digest']);
  const idempotencyKey = checkIdempotencyKey(req.headers['idempotency-key']);
  const receiptName = req.headers['coffre-receipt-name'];
  if (receiptName !== undefined && receiptName !== 'include' && receiptName !== 'omit')
    throw vaultErrors.invalidInput('Coffre-Receipt-Name must be `include` or `omit`');
  const digest = {
    ...(headerDigest ? { expectedSha256: headerDigest } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    ...(receiptName === 'include' ? { receiptName: true } : {}),
  };
  if (req.isMultipart()) {
    const parts = req.parts({
      limits: { fileSize: max + 1, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 21, headerPairs: 50 },
    });
    const meta = new Map<string, string[]>();
    for await (const part of parts) {
      if (part.type === 'field') {
        meta.set(part.fieldname, [...(meta.get(part.fieldname) ?? []), String(part.value)]);
        continue;
      }
      if (isNew && !meta.has('name') && part.filename) meta.set('name', [part.filename]);
      const mediaType = meta.get('type')?.[0] ?? part.mimetype;
      // fields after the file part are not read: the file must come last
      return { meta, body: { stream: part.file as Readable, mediaType: checkMediaType(mediaType), ...digest, finish } };
    }
    throw vaultErrors.invalidInput('multipart upload without a file part');
  }
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct !== 'application/octet-stream') throw vaultErrors.unsupportedMedia();
  const n = declaredLength(req);
  const meta = headerMeta(req);
  for (const k of ['folderId', 'type']) if (query.has(k)) meta.set(k, query.get(k)!);
  return {
    meta,
    // the request's own pieces (one buffer per TLS record): freed as soon as they are encrypted
    body: {
      stream: handOver((req.body as Readable | undefined) ?? req.raw),
      mediaType: checkMediaType(query.get('type')?.[0]),
      ...(n !== undefined ? { declaredLength: n } : {}),
      ...digest,
      finish,
    },
  };
}

/** A retried upload (same Idempotency-Key) answers like the first, marked `Idempotent-Replayed: true`. */
function replied(reply: FastifyReply, r: { replayed?: boolean }): FastifyReply {
  if (r.replayed) reply.header('idempotent-replayed', 'true');
  delete r.replayed;
  return reply;
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * The vault API under /api/v1. Every route needs `workspace:use`; the workspace role
 * (viewer/editor/owner) is checked by the service against the resource.
 */
export const vaultRoutes: FastifyPluginAsync<VaultRoutesOptions> = async (app0, opts) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  const { vault, maxUploadBytes } = opts;

  // Uploads stream: the raw body is handed over unread (no buffering, no body limit here: the
  // service enforces vault.maxUploadBytes while streaming).
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  await app.register(multipart, { throwFileSizeLimit: true, limits: { fileSize: maxUploadBytes + 1, files: 1 } });
  // JSON bodies (rename, tags…) must be valid UTF-8: the default parser would put U+FFFD in.
  const json = (app as unknown as FastifyInstance).getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 256 * 1024 }, (req, body, done) => {
    let text: string;
    try {
      text = strictUtf8(body as Buffer, 'request body');
    } catch (e) {
      done(e as Error, undefined);
      return;
    }
    json(req, text, done);
  });
  // Every query string must be valid percent-encoded UTF-8, and carry nothing confidential.
  app.addHook('preValidation', async (req) => {
    for (const k of strictQuery(req).keys()) {
      const instead = CONFIDENTIAL_QUERY.get(k);
      if (instead) throw vaultErrors.invalidInput(`\`${k}\` is confidential and must not be in the URL: ${instead}`);
    }
  });

  const uploadResponse = { 201: S.UploadReply, ...err4xx, 413: S.ErrorReply, 415: S.ErrorReply, 503: S.ErrorReply };

  app.post(
    '/workspaces/:workspaceId/documents',
    {
      config: { permission, longBody: true },
      schema: {
        tags,
        summary: 'upload a new document (raw body or multipart)',
        params: S.WorkspaceParams,
        querystring: S.NewDocumentQuery,
        headers: S.UploadHeaders,
        body: S.UploadBodyDoc,
        response: uploadResponse,
      } as never,
    },
    async (req, reply) => {
      const c = caller(req);
      const { workspaceId } = req.params as { workspaceId: string };
      const { body, meta } = await readUpload(req, maxUploadBytes, true);
      const one = (k: string) => meta.get(k)?.[0];
      const rawName = one('name');
      if (rawName === undefined)
        throw vaultErrors.invalidName(
          'name',
          "is required (`Content-Disposition: attachment; filename*=UTF-8''…`, or the multipart field or file name)",
        );
      const target: UploadTarget = {
        kind: 'new',
        workspaceId,
        folderId: one('folderId') ?? null,
        name: checkName(rawName),
        ...(one('description') !== undefined ? { description: checkDescription(one('description')) } : {}),
        ...(meta.has('tags') ? { tags: checkTags(meta.get('tags')) } : {}),
      };
      const r = await vault.upload(c, target, body);
      return replied(reply, r).code(201).header('location', `/api/v1/documents/${r.id}`).send(r);
    },
  );

  app.post(
    '/documents/:id/versions',
    {
      config: { permission, longBody: true },
      schema: {
        tags,
        summary: 'upload a new version (raw body or multipart)',
        params: S.IdParams,
        querystring: S.NewVersionQuery,
        headers: S.UploadHeaders,
        body: S.UploadBodyDoc,
        response: uploadResponse,
      } as never,
    },
    async (req, reply) => {
      const c = caller(req);
      const { id } = req.params as { id: string };
      const { body } = await readUpload(req, maxUploadBytes, false);
      const r = await vault.upload(c, { kind: 'version', documentId: id }, body);
      return replied(reply, r)
        .code(201)
        .send(r as never);
    },
  );

  app.get(
    '/documents/:id/content',
    {
      config: { permission },
      exposeHeadRoute: false,
      schema: {
        tags,
        summary: 'download a version (Range supported); integrity-checked against its SHA-256',
        params: S.IdParams,
        querystring: S.ContentQuery,
        headers: S.ContentHeaders,
        response: { 200: S.ContentReplyDoc, 206: S.ContentReplyDoc, ...err4xx, 416: S.ErrorReply, 503: S.ErrorReply },
      } as never,
    },
    async (req, reply) => sendContent(vault, req, reply),
  );

  const listing = (req: FastifyRequest, workspaceId: string, q: S.ListQueryInput & { q?: string; tag?: string }) =>
    vault.list(caller(req), workspaceId, {
      limit: q.limit,
      ...(q.folderId !== undefined ? { folderId: q.folderId } : {}),
      ...(q.q !== undefined ? { q: q.q } : {}),
      ...(q.tag !== undefined ? { tag: q.tag } : {}),
      ...(q.trash !== undefined ? { trash: q.trash } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });

  app.get(
    '/workspaces/:workspaceId/documents',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'list documents (to search by name or tag: POST …/documents/search)',
        params: S.WorkspaceParams,
        querystring: S.ListQuerySchema,
        response: { 200: S.ListReply, ...err4xx },
      },
    },
    async (req) => listing(req, req.params.workspaceId, req.query),
  );

  app.post(
    '/workspaces/:workspaceId/documents/search',
    {
      config: { permission },
      schema: {
        tags,
        summary:
          'search documents by part of the name or by tag (the search text travels in the body, never in the URL)',
        params: S.WorkspaceParams,
        body: S.SearchBody,
        response: { 200: S.ListReply, ...err4xx },
      },
    },
    async (req) => listing(req, req.params.workspaceId, req.body),
  );

  app.get(
    '/documents/:id',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'a document with its versions',
        params: S.IdParams,
        response: { 200: S.DocumentWithVersions, ...err4xx },
      },
    },
    async (req) => vault.get(caller(req), req.params.id),
  );

  app.get(
    '/workspaces/:workspaceId/documents/archive',
    {
      config: { permission },
      exposeHeadRoute: false,
      schema: {
        tags,
        summary:
          'download several documents as one zip, streamed (the newest version of each; each audited as a download and integrity-checked)',
        params: S.WorkspaceParams,
        querystring: S.ArchiveQuery,
        response: { 200: S.ArchiveReplyDoc, ...err4xx, 503: S.ErrorReply },
      } as never,
    },
    async (req, reply) => {
      const { workspaceId } = req.params as { workspaceId: string };
      const { ids } = req.query as { ids: string };
      const zip = await vault.archive(caller(req), workspaceId, ids.split(','));
      const day = new Date().toISOString().slice(0, 10);
      return reply
        .code(200)
        .header('content-type', 'application/zip')
        .header('content-disposition', `attachment; filename="documents-${day}.zip"`)
        .header('content-security-policy', "sandbox; default-src 'none'")
        .send(zip);
    },
  );

  app.post(
    '/documents/:id/versions/:version/restore',
    {
      config: { permission },
      schema: {
        tags,
        summary:
          'restore an older version: its content becomes a new version (editors; audited as doc.version.restore)',
        params: S.VersionParams,
        response: { 201: S.RestoreVersionReply, ...err4xx, 413: S.ErrorReply, 503: S.ErrorReply },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await vault.restoreVersion(caller(req), req.params.id, req.params.version)),
  );

  app.get(
    '/documents/:id/versions',
    {
      config: { permission },
      schema: {
        tags,
        summary: "a document's versions, newest first",
        params: S.IdParams,
        response: { 200: S.VersionsReply, ...err4xx },
      },
    },
    async (req) => ({ versions: (await vault.get(caller(req), req.params.id)).versions }),
  );

  app.patch(
    '/documents/:id',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'rename, move, describe or tag a document',
        params: S.IdParams,
        body: S.DocumentPatchBody,
        response: { 200: S.Document, ...err4xx },
      },
    },
    async (req) => vault.update(caller(req), req.params.id, req.body),
  );

  app.delete(
    '/documents/:id',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'move a document to the trash',
        params: S.IdParams,
        response: { 200: S.TrashReply, ...err4xx },
      },
    },
    async (req) => vault.trash(caller(req), req.params.id),
  );

  app.post(
    '/documents/:id/restore',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'restore a document from the trash',
        params: S.IdParams,
        response: { 200: S.Document, ...err4xx },
      },
    },
    async (req) => vault.restore(caller(req), req.params.id),
  );

  app.post(
    '/documents/:id/purge',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'destroy a trashed document now (owners): its data keys are destroyed, it is unrecoverable',
        params: S.IdParams,
        response: { 200: S.PurgeReply, ...err4xx, 503: S.ErrorReply },
      },
    },
    async (req) => vault.purge(caller(req), req.params.id),
  );

  app.post(
    '/documents/:id/verify',
    {
      config: { permission },
      schema: {
        tags,
        summary:
          "integrity control: re-read every version's blob, check every chunk's tag, its size and SHA-256 (members; no content released)",
        params: S.IdParams,
        response: { 200: S.VerifyReply, ...err4xx, 503: S.ErrorReply },
      },
    },
    async (req) => vault.verify(caller(req), req.params.id),
  );

  app.post(
    '/workspaces/:workspaceId/folders',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'create a folder',
        params: S.WorkspaceParams,
        body: S.FolderCreateBody,
        response: { 201: S.Folder, ...err4xx },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await vault.createFolder(caller(req), req.params.workspaceId, req.body.name, req.body.parentId ?? null)),
  );

  app.get(
    '/workspaces/:workspaceId/folders',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'list folders',
        params: S.WorkspaceParams,
        querystring: S.FolderListQuery,
        response: { 200: S.FolderList, ...err4xx },
      },
    },
    async (req) => ({
      folders: await vault.listFolders(caller(req), req.params.workspaceId, req.query.parentId ?? null),
    }),
  );

  app.patch(
    '/folders/:id',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'rename or move a folder',
        params: S.IdParams,
        body: S.FolderPatchBody,
        response: { 200: S.Folder, ...err4xx },
      },
    },
    async (req) => vault.updateFolder(caller(req), req.params.id, req.body),
  );

  app.delete(
    '/folders/:id',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'delete an empty folder',
        params: S.IdParams,
        response: { 204: { type: 'null', description: 'deleted' }, ...err4xx },
      },
    },
    async (req, reply) => {
      await vault.deleteFolder(caller(req), req.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/workspaces/:workspaceId/usage',
    {
      config: { permission },
      schema: {
        tags,
        summary: 'storage used and quota',
        params: S.WorkspaceParams,
        response: { 200: S.UsageReply, ...err4xx },
      },
    },
    async (req) => vault.usage(caller(req), req.params.workspaceId),
  );
};

async function sendContent(vault: VaultService, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id } = req.params as { id: string };
  const { version } = req.query as { version?: number };
  const ifRange = req.headers['if-range'];
  return sendOpened(
    await vault.open(caller(req), id, version, req.headers.range, typeof ifRange === 'string' ? ifRange : undefined),
    reply,
  );
}

function sendOpened(o: Awaited<ReturnType<VaultService['open']>>, reply: FastifyReply): FastifyReply {
  reply
    .header('content-type', o.mediaType)
    .header('content-disposition', contentDisposition(o.name))
    .header('content-security-policy', "sandbox; default-src 'none'")
    .header('accept-ranges', 'bytes')
    .header('etag', `"${o.sha256}"`)
    .header('repr-digest', toDigest(o.sha256))
    .header('x-coffre-version', String(o.version));
  if (o.range) {
    reply
      .code(206)
      .header('content-range', `bytes ${o.range.start}-${o.range.end}/${o.size}`)
      .header('content-length', String(o.range.end - o.range.start + 1));
  } else {
    reply.code(200).header('content-length', String(o.size));
  }
  freeWhenWritten(reply.raw as never);
  return reply.send(o.stream);
}
