import { Type } from '@sinclair/typebox';

/** TypeBox schemas of the records API (also the response filters: nothing else is serialised). */

export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const IsoTime = Type.String({ format: 'date-time' });
export const ErrorReply = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String(), details: Type.Optional(Type.Unknown()) }) });
export const errs = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply };
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });

const Kind = Type.Union(['read', 'download', 'change', 'share', 'delete', 'other'].map((k) => Type.Literal(k)));

export const HistoryQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

export const HistoryReply = Type.Object(
  {
    documentId: Type.String(),
    scope: Type.Union([Type.Literal('all'), Type.Literal('own')], { description: "all: every actor (workspace owners); own: the caller's own actions" }),
    entries: Type.Array(
      Type.Object(
        {
          seq: Type.Integer(),
          at: IsoTime,
          actor: Type.String(),
          username: Type.Union([Type.String(), Type.Null()]),
          action: Type.String(),
          kind: Kind,
          outcome: Type.String(),
          reason: Type.Union([Type.String(), Type.Null()]),
          targets: Type.Record(Type.String(), Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const ReportQuery = Type.Object(
  {
    document: Type.Optional(Id),
    folder: Type.Optional(Id),
    from: Type.String({ format: 'date-time', description: 'inclusive' }),
    to: Type.String({ format: 'date-time', description: 'exclusive' }),
  },
  { additionalProperties: false },
);

export const ReportReply = Type.Object(
  {
    subject: Type.Object(
      { kind: Type.Union([Type.Literal('document'), Type.Literal('folder')]), id: Type.String(), workspaceId: Type.String(), documents: Type.Integer(), folders: Type.Integer() },
      { additionalProperties: false },
    ),
    from: IsoTime,
    to: IsoTime,
    total: Type.Integer(),
    rows: Type.Array(
      Type.Object(
        { actor: Type.String(), username: Type.Union([Type.String(), Type.Null()]), action: Type.String(), kind: Kind, outcome: Type.String(), count: Type.Integer(), first: IsoTime, last: IsoTime },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
