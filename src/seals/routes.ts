import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import { auditSource, type AuditSource, type Auditor } from '../audit/index.js';
import { errorReplies, type Actor } from '../http/index.js';
import { errors } from '../shared/errors.js';
import { sealsErrors } from './errors.js';
import tar from 'tar-stream';
import type { DepositReceipts } from './receipts.js';
import { receiptFiles } from './receipt-files.js';
import type { ReportArchive } from './reports.js';

export interface ReceiptRoutesOptions {
  receipts: DepositReceipts;
  /**
   * The vault's need-to-know lookup: the document's workspace when the caller is a member (any
   * role); otherwise the vault's 404, the denial audited under `action`.
   */
  locate(
    c: { actor: Actor; source?: AuditSource },
    documentId: string,
    action: string,
  ): Promise<{ workspaceId: string }>;
  audit: Auditor;
}

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Query = Type.Object(
  {
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 })),
    format: Type.Optional(
      Type.Union([Type.Literal('json'), Type.Literal('tar')], {
        description:
          '`tar`: the files an auditor checks with openssl alone (signed JSON, .sig, .tsr, seal-cert.pem, README.txt)',
      }),
    ),
  },
  { additionalProperties: false },
);
export const ReceiptReply = Type.Object(
  {
    id: Type.String(),
    documentId: Type.String(),
    version: Type.Integer(),
    workspaceId: Type.String(),
    body: Type.String({ description: 'the exact signed bytes (UTF-8 JSON, docs/formats.md "Deposit receipts")' }),
    sha256: Type.String({ description: 'SHA-256 of `body`, hex' }),
    signature: Type.String({ description: 'DER ECDSA-Sig-Value over `body`, base64 (`openssl dgst -sha256 -verify`)' }),
    certificate: Type.Object({ fingerprint: Type.String(), pem: Type.String() }, { additionalProperties: false }),
    timestamp: Type.Object(
      {
        state: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('granted')]),
        token: Type.Optional(Type.String({ description: 'RFC 3161 TimeStampResp over `body`, DER, base64' })),
        genTime: Type.Optional(Type.String({ format: 'date-time' })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** GET /documents/{id}/receipt: a version's signed deposit receipt, for the workspace's members. */
export const receiptRoutes: FastifyPluginAsync<ReceiptRoutesOptions> = async (app0, o) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/documents/:id/receipt',
    {
      config: { permission: PERMISSIONS.workspaceUse },
      schema: {
        tags: ['documents'],
        summary:
          "a version's deposit receipt (newest unless `version`): signed by the sealing key, RFC 3161 timestamp when a TSA is configured; members of the document's workspace",
        params: Type.Object({ id: Id }, { additionalProperties: false }),
        querystring: Query,
        response: { 200: ReceiptReply, ...errorReplies(400, 401, 403, 404, 503) },
      },
    },
    async (req: FastifyRequest, reply) => {
      if (!req.actor) throw errors.unauthenticated();
      const c = { actor: req.actor, source: auditSource(req) };
      const { id } = req.params as { id: string };
      const { version, format } = req.query as Static<typeof Query>;
      const place = await o.locate(c, id, 'doc.receipt');
      const r = await o.receipts.get(id, version);
      if (!r) throw sealsErrors.receiptNotFound();
      await o.audit.recordNow({
        action: 'doc.receipt',
        actor: c.actor.id,
        outcome: 'success',
        targets: { workspace: place.workspaceId, document: id, version: String(r.version), receipt: r.id },
        source: c.source,
      });
      if (format !== 'tar') return r;
      const { base, files } = receiptFiles(r);
      const pack = tar.pack();
      for (const [name, data] of files) pack.entry({ name: `${base}/${name}`, size: data.length }, data);
      pack.finalize();
      return reply
        .header('content-type', 'application/x-tar')
        .header('content-disposition', `attachment; filename="${base}.tar"`)
        .send(pack);
    },
  );
};

const Timestamp = Type.Object(
  {
    state: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('granted')]),
    token: Type.Optional(Type.String({ description: 'RFC 3161 TimeStampResp over `body`, DER, base64' })),
    genTime: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
const ReportList = Type.Object(
  {
    reports: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          createdAt: Type.String({ format: 'date-time' }),
          actor: Type.String(),
          scope: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
          ok: Type.Boolean(),
          versions: Type.Integer(),
          failures: Type.Integer(),
          body: Type.String({ description: 'the exact signed bytes (canonical JSON of the report)' }),
          sha256: Type.String(),
          signature: Type.String({ description: 'DER ECDSA-Sig-Value over `body`, base64' }),
          certificateFingerprint: Type.String(),
          timestamp: Timestamp,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const ReportQuery = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) },
  { additionalProperties: false },
);

/** GET /records/integrity-reports: the signed integrity reports, newest first, for records managers (ids only). */
export const reportRoutes: FastifyPluginAsync<{ reports: ReportArchive; audit: Auditor }> = async (app0, o) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/records/integrity-reports',
    {
      config: { permission: PERMISSIONS.recordsManage },
      schema: {
        tags: ['records'],
        summary:
          'signed (and timestamped) integrity reports, newest first: scrub job, coffre vault verify, members checks',
        querystring: ReportQuery,
        response: { 200: ReportList, ...errorReplies(400, 401, 403) },
      },
    },
    async (req: FastifyRequest) => {
      if (!req.actor) throw errors.unauthenticated();
      const { limit } = req.query as Static<typeof ReportQuery>;
      const reports = await o.reports.list(limit);
      await o.audit.recordNow({
        action: 'records.integrity_reports',
        actor: req.actor.id,
        outcome: 'success',
        source: auditSource(req),
      });
      return { reports };
    },
  );
};
