import type { Kysely } from 'kysely';
import type { AuditSource, Auditor } from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { Actor } from '../http/index.js';
import { recordsErrors } from './errors.js';

export interface CertificateInfo {
  id: string;
  documentId: string;
  workspaceId: string;
  destroyedAt: string;
  body: string;
  sha256: string;
  signature: string | null;
  /** RFC 3161 timestamp over `body`, when a TSA is configured */
  timestamp?: { state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string };
}

const toInfo = (r: RecordsSchema['records_certificates']): CertificateInfo => ({
  id: r.id,
  documentId: r.document_id,
  workspaceId: r.workspace_id,
  destroyedAt: new Date(Number(r.destroyed_at)).toISOString(),
  body: r.body,
  sha256: r.sha256,
  signature: r.signature,
});

/** Destruction certificates, newest first, by document or workspace (ids only). Each read is audited. */
export async function listCertificates(
  db: Kysely<RecordsSchema>,
  audit: Auditor,
  c: { actor: Actor; source?: AuditSource },
  q: { document?: string; workspace?: string; limit: number },
  stampOf?: (id: string) => Promise<NonNullable<CertificateInfo['timestamp']>>,
): Promise<CertificateInfo[]> {
  let s = db.selectFrom('records_certificates').selectAll();
  if (q.document !== undefined) s = s.where('document_id', '=', q.document);
  if (q.workspace !== undefined) s = s.where('workspace_id', '=', q.workspace);
  const rows = await s.orderBy('destroyed_at', 'desc').limit(q.limit).execute();
  await audit.recordNow({
    action: 'records.certificates',
    actor: c.actor.id,
    outcome: 'success',
    targets: { ...(q.document ? { document: q.document } : {}), ...(q.workspace ? { workspace: q.workspace } : {}) },
    ...(c.source ? { source: c.source } : {}),
  });
  const out = rows.map(toInfo);
  if (stampOf) for (const c of out) c.timestamp = await stampOf(c.id);
  return out;
}

export async function getCertificate(db: Kysely<RecordsSchema>, id: string): Promise<CertificateInfo> {
  const r = await db.selectFrom('records_certificates').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw recordsErrors.certificateNotFound();
  return toInfo(r);
}
