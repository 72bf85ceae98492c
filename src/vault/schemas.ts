import { Type, type Static } from '@sinclair/typebox';

/** TypeBox schemas of the vault API (also the response filters: nothing else is serialised). */

export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const IsoTime = Type.String({ format: 'date-time' });

export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      requestId: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'VaultError', description: 'error with a stable code' },
);

export const WorkspaceParams = Type.Object({ workspaceId: Id }, { additionalProperties: false });
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });

export const Version = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    mediaType: Type.String(),
    createdAt: IsoTime,
    createdBy: Type.String({ description: 'actor id of the author (`user:<id>`, `token:<id>`…)' }),
    createdByName: Type.Union([Type.String(), Type.Null()], {
      description: "the author's user name; null when the author is not a user (the appliance, a local command)",
    }),
  },
  { additionalProperties: false },
);

const DocumentFields = {
  id: Type.String(),
  workspaceId: Type.String(),
  folderId: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  tags: Type.Array(Type.String()),
  version: Type.Integer({ minimum: 1, description: 'newest version' }),
  size: Type.Integer({ minimum: 0, description: 'size of the newest version' }),
  createdAt: IsoTime,
  createdBy: Type.String(),
  updatedAt: IsoTime,
  trashedAt: Type.Union([IsoTime, Type.Null()]),
};
export const Document = Type.Object(DocumentFields, { additionalProperties: false });
export const DocumentWithVersions = Type.Object(
  { ...DocumentFields, versions: Type.Array(Version) },
  { additionalProperties: false },
);

export const UploadReply = Type.Object(
  {
    id: Type.String({ description: 'document id' }),
    workspaceId: Type.String(),
    version: Type.Integer({ minimum: 1 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the plaintext, hex' }),
    created: Type.Boolean({ description: 'true when this upload created the document' }),
    receipt: Type.Optional(
      Type.String({ description: "the deposit receipt's id (`GET /documents/{id}/receipt?version=N`)" }),
    ),
  },
  { additionalProperties: false },
);

/**
 * Ids and the media type of a new document in the query string. Its name, description and tags
 * never travel in the URL: headers for a raw upload (UploadHeaders), form fields for multipart.
 */
export const NewDocumentQuery = Type.Object(
  {
    folderId: Type.Optional(Id),
    type: Type.Optional(Type.String({ maxLength: 127, description: 'media type of the content (raw body)' })),
  },
  { additionalProperties: false },
);
export const NewVersionQuery = Type.Object(
  { type: Type.Optional(Type.String({ maxLength: 127 })) },
  { additionalProperties: false },
);

export const UploadHeaders = Type.Object({
  'content-disposition': Type.Optional(
    Type.String({
      description:
        'raw upload of a new document: its name, `attachment; filename*=UTF-8\'\'<percent-encoded>` (RFC 6266, RFC 8187); a plain `filename="…"` must be printable ASCII',
    }),
  ),
  'coffre-description': Type.Optional(
    Type.String({
      description: "raw upload of a new document: its description, `UTF-8''<percent-encoded>` (RFC 8187)",
    }),
  ),
  'coffre-tags': Type.Optional(
    Type.String({
      description:
        "raw upload of a new document: its tags, comma-separated `UTF-8''<percent-encoded>` values (RFC 8187)",
    }),
  ),
  'content-length': Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$' })),
  'content-digest': Type.Optional(
    Type.String({ description: 'RFC 9530 `sha-256=:<base64>:`; also accepted as a trailer' }),
  ),
  'repr-digest': Type.Optional(Type.String({ description: 'RFC 9530 `sha-256=:<base64>:`' })),
  'coffre-receipt-name': Type.Optional(
    Type.Union([Type.Literal('include'), Type.Literal('omit')], {
      description: "`include` puts the document's name in the deposit receipt (left out by default: receipts travel)",
    }),
  ),
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        'a fresh value per upload (e.g. a UUID); a retry with the same key gets the version the first attempt created (header `Idempotent-Replayed: true`)',
    }),
  ),
});

/**
 * The upload body is a stream: described for OpenAPI. Validation sees the request stream (an
 * object) or, for multipart, nothing (null) and lets both through; the service checks the content.
 */
export const UploadBodyDoc = {
  content: {
    'application/octet-stream': {
      schema: { type: ['string', 'object'], format: 'binary', description: 'the document content' },
    },
    'multipart/form-data': {
      schema: {
        type: ['object', 'null'],
        description: 'fields `name`, `folderId`, `description`, `tags` (repeated), `type`, then ONE file part (last)',
        properties: {
          name: { type: 'string' },
          folderId: { type: 'string' },
          description: { type: 'string' },
          tags: { type: 'array', items: { type: 'string' } },
          type: { type: 'string' },
          file: { type: 'string', format: 'binary' },
        },
      },
    },
  },
};

const ListFields = {
  folderId: Type.Optional(
    Type.Union([Id, Type.Literal('root')], { description: 'a folder, or `root`; absent: the whole workspace' }),
  ),
  trash: Type.Optional(Type.Boolean({ default: false })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};
export const ListQuerySchema = Type.Object(ListFields, { additionalProperties: false });
export type ListQueryInput = Static<typeof ListQuerySchema>;

/** A search: the text and tag are confidential, so they travel in the body, never in the URL. */
export const SearchBody = Type.Object(
  {
    ...ListFields,
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'words, each the start of a word of the name (case- and accent-insensitive)',
      }),
    ),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'exact tag (case-insensitive)' })),
  },
  { additionalProperties: false },
);

export const ListReply = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          folderId: Type.Union([Type.String(), Type.Null()]),
          name: Type.String(),
          tags: Type.Array(Type.String()),
          version: Type.Integer(),
          size: Type.Integer(),
          createdAt: IsoTime,
          updatedAt: IsoTime,
          trashedAt: Type.Union([IsoTime, Type.Null()]),
        },
        { additionalProperties: false },
      ),
    ),
    next: Type.Union([Type.String(), Type.Null()]),
    total: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const DocumentPatchBody = Type.Object(
  {
    name: Type.Optional(Type.String()),
    folderId: Type.Optional(Type.Union([Id, Type.Null()])),
    description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    tags: Type.Optional(Type.Array(Type.String(), { maxItems: 50 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const TrashReply = Type.Object(
  { id: Type.String(), trashedAt: IsoTime, purgeAfter: IsoTime },
  { additionalProperties: false },
);
export const PurgeReply = Type.Object(
  { id: Type.String(), versions: Type.Integer(), bytes: Type.Integer() },
  { additionalProperties: false },
);
export const VersionsReply = Type.Object({ versions: Type.Array(Version) }, { additionalProperties: false });

export const ContentQuery = Type.Object(
  { version: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export const ContentHeaders = Type.Object({
  range: Type.Optional(Type.String({ maxLength: 200, description: 'one byte range, e.g. `bytes=0-1023`' })),
  'if-range': Type.Optional(Type.String({ maxLength: 200 })),
});
export const ContentReplyDoc = {
  description: 'the content (200), or the requested range (206)',
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
};

export const Folder = Type.Object(
  {
    id: Type.String(),
    workspaceId: Type.String(),
    parentId: Type.Union([Type.String(), Type.Null()]),
    name: Type.String(),
    createdAt: IsoTime,
    createdBy: Type.String(),
    updatedAt: IsoTime,
  },
  { additionalProperties: false },
);
export const FolderCreateBody = Type.Object(
  { name: Type.String(), parentId: Type.Optional(Type.Union([Id, Type.Null()])) },
  { additionalProperties: false },
);
export const FolderPatchBody = Type.Object(
  { name: Type.Optional(Type.String()), parentId: Type.Optional(Type.Union([Id, Type.Null()])) },
  { additionalProperties: false, minProperties: 1 },
);
export const FolderListQuery = Type.Object(
  {
    parentId: Type.Optional(
      Type.Union([Id, Type.Literal('all')], { description: 'absent: the root; `all`: every folder' }),
    ),
  },
  { additionalProperties: false },
);
export const FolderList = Type.Object({ folders: Type.Array(Folder) }, { additionalProperties: false });

export const UsageReply = Type.Object(
  { usedBytes: Type.Integer(), quotaBytes: Type.Union([Type.Integer(), Type.Null()]), documents: Type.Integer() },
  { additionalProperties: false },
);

export const VerifyReply = Type.Object(
  {
    type: Type.Literal('coffre.integrity-report'),
    formatVersion: Type.Literal(1),
    scope: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
    startedAt: IsoTime,
    finishedAt: IsoTime,
    documents: Type.Integer(),
    versions: Type.Integer(),
    bytes: Type.Integer(),
    ok: Type.Boolean(),
    failures: Type.Array(
      Type.Object(
        {
          documentId: Type.String(),
          workspaceId: Type.String(),
          version: Type.Integer(),
          blobId: Type.String(),
          problem: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
    seal: Type.Optional(
      Type.Object(
        {
          algorithm: Type.String(),
          certificateFingerprint: Type.String(),
          signature: Type.String({
            description:
              'base64 DER ECDSA signature over the canonical JSON of this report without `seal` and `timestamp`',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    timestamp: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('granted')]),
          token: Type.Optional(
            Type.String({ description: 'RFC 3161 TimeStampResp over the signed bytes, DER, base64' }),
          ),
          genTime: Type.Optional(Type.String({ format: 'date-time' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: 'integrity report: every chunk tag, size and SHA-256 re-checked' },
);

export const VersionParams = Type.Object(
  { id: Id, version: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export const RestoreVersionReply = Type.Object(
  {
    ...UploadReply.properties,
    restoredFrom: Type.Integer({ minimum: 1, description: 'the version whose content this new version holds' }),
  },
  { additionalProperties: false },
);

/** Document ids are not confidential: they may travel in the URL (a GET the browser downloads). */
export const ArchiveQuery = Type.Object(
  {
    ids: Type.String({
      minLength: 1,
      maxLength: 6600,
      pattern: '^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,99}$',
      description: 'comma-separated document ids of the workspace, at most 100',
    }),
  },
  { additionalProperties: false },
);
export const ArchiveReplyDoc = {
  description: 'a zip of the newest version of each document, streamed (stored, not compressed)',
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
};
