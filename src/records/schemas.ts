import { ErrorReply, errorReplies } from '../http/index.js';

export { ErrorReply };
import { Type } from '@sinclair/typebox';

/** TypeBox schemas of the records API (also the response filters: nothing else is serialised). */

export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const IsoTime = Type.String({ format: 'date-time' });
export const errs = errorReplies(400, 401, 403, 404, 409);
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });
export const PeriodQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
  },
  { additionalProperties: false },
);

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
    scope: Type.Union([Type.Literal('all'), Type.Literal('own')], {
      description: "all: every actor (workspace owners); own: the caller's own actions",
    }),
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
      {
        kind: Type.Union([Type.Literal('document'), Type.Literal('folder')]),
        id: Type.String(),
        workspaceId: Type.String(),
        documents: Type.Integer(),
        folders: Type.Integer(),
      },
      { additionalProperties: false },
    ),
    from: IsoTime,
    to: IsoTime,
    total: Type.Integer(),
    rows: Type.Array(
      Type.Object(
        {
          actor: Type.String(),
          username: Type.Union([Type.String(), Type.Null()]),
          action: Type.String(),
          kind: Kind,
          outcome: Type.String(),
          count: Type.Integer(),
          first: IsoTime,
          last: IsoTime,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const ScopeKind = Type.Union([Type.Literal('workspace'), Type.Literal('folder'), Type.Literal('document')]);
export const Scope = Type.Object({ kind: ScopeKind, id: Id }, { additionalProperties: false });
const NullableTime = Type.Union([IsoTime, Type.Null()]);

export const RequestBody = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('retention'),
      scope: Scope,
      minDays: Type.Integer({
        minimum: 1,
        maximum: 36_500,
        description: 'minimum keeping period from deposit, in days',
      }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('retention-remove'), scope: Scope },
    { additionalProperties: false, description: 'removes the policy of a workspace or folder' },
  ),
  Type.Object({ kind: Type.Literal('release-hold'), holdId: Id }, { additionalProperties: false }),
]);

export const RequestReply = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    scope: Type.Union([Scope, Type.Null()]),
    workspaceId: Type.String(),
    minDays: Type.Union([Type.Integer(), Type.Null()]),
    holdId: Type.Union([Type.String(), Type.Null()]),
    requestedBy: Type.String(),
    requestedAt: IsoTime,
    expiresAt: IsoTime,
    state: Type.String(),
    decidedBy: Type.Union([Type.String(), Type.Null()]),
    decidedAt: NullableTime,
  },
  { additionalProperties: false },
);

export const HoldBody = Type.Object({ scope: Scope }, { additionalProperties: false });
export const HoldReply = Type.Object(
  { id: Type.String(), scope: Scope, workspaceId: Type.String(), placedAt: IsoTime, placedBy: Type.String() },
  { additionalProperties: false },
);
export const PolicyReply = Type.Object(
  {
    scope: Scope,
    workspaceId: Type.String(),
    minDays: Type.Integer(),
    setAt: IsoTime,
    requestedBy: Type.String(),
    approvedBy: Type.String(),
  },
  { additionalProperties: false },
);
export const OverviewReply = Type.Object(
  {
    policies: Type.Array(PolicyReply),
    holds: Type.Array(HoldReply),
    requests: Type.Array(RequestReply),
    people: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'user id → user name of the people named above' }),
    ),
  },
  { additionalProperties: false },
);

export const CertificateQuery = Type.Object(
  {
    document: Type.Optional(Id),
    workspace: Type.Optional(Id),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);
export const Certificate = Type.Object(
  {
    id: Type.String(),
    documentId: Type.String(),
    workspaceId: Type.String(),
    destroyedAt: IsoTime,
    body: Type.String({ description: 'the certificate as canonical JSON: the exact bytes sha256 and signature cover' }),
    sha256: Type.String(),
    signature: Type.Union([Type.String(), Type.Null()]),
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
  { additionalProperties: false },
);
export const CertificateList = Type.Object({ certificates: Type.Array(Certificate) }, { additionalProperties: false });
