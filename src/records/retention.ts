import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { RecordsDb, RecordsSchema, SharedDb } from '../db/index.js';
import type { DestructionRecord, GuardedDocument, RetentionGuard } from '../vault/index.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { recordsErrors } from './errors.js';

export { canonicalJson };

export const DAY = 86_400_000;

/** What applies to one document: the longest keeping period over its scopes, and the holds on them. */
export interface Applicable {
  minDays: number;
  holds: { id: string; scopeKind: string; scopeId: string }[];
}

/**
 * The rules, read from the records tables: policies of the workspace and of each folder up the
 * chain (the longest wins), and holds on the workspace, those folders or the document itself.
 */
export async function applicable(
  db: Kysely<RecordsSchema>,
  workspaceId: string,
  folderChain: readonly string[],
  documentId?: string,
): Promise<Applicable> {
  const policies = await db
    .selectFrom('records_policies')
    .select(['scope_kind', 'scope_id', 'min_days'])
    .where('workspace_id', '=', workspaceId)
    .where((eb) =>
      eb.or([
        eb.and([eb('scope_kind', '=', 'workspace'), eb('scope_id', '=', workspaceId)]),
        ...(folderChain.length
          ? [eb.and([eb('scope_kind', '=', 'folder'), eb('scope_id', 'in', [...folderChain])])]
          : []),
      ]),
    )
    .execute();
  const holds = await db
    .selectFrom('records_holds')
    .select(['id', 'scope_kind', 'scope_id'])
    .where('workspace_id', '=', workspaceId)
    .where('released_at', 'is', null)
    .where((eb) =>
      eb.or([
        eb.and([eb('scope_kind', '=', 'workspace'), eb('scope_id', '=', workspaceId)]),
        ...(folderChain.length
          ? [eb.and([eb('scope_kind', '=', 'folder'), eb('scope_id', 'in', [...folderChain])])]
          : []),
        ...(documentId ? [eb.and([eb('scope_kind', '=', 'document'), eb('scope_id', '=', documentId)])] : []),
      ]),
    )
    .execute();
  return {
    minDays: policies.reduce((m, p) => Math.max(m, Number(p.min_days)), 0),
    holds: holds.map((h) => ({ id: h.id, scopeKind: h.scope_kind, scopeId: h.scope_id })),
  };
}

const until = (depositedAt: number, minDays: number) => depositedAt + minDays * DAY;

/** The sealing key (src/seals Sealer), as the records module uses it. */
export interface ProofSigner {
  sign(data: Buffer): Promise<Buffer>;
  certificate(): Promise<{ fingerprint: string }>;
}

export interface GuardOptions {
  db: Kysely<RecordsSchema>;
  /** the appliance's id, named in each certificate */
  applianceId: string;
  /** signs each certificate (ECDSA in the HSM; fail closed: no signature, no certificate, the destruction finishes on the next run) */
  signer?: ProofSigner;
  /** queues each certificate for its RFC 3161 timestamp, in the destruction's transaction (src/seals) */
  stamps?: CertificateStamps;
}

/** RFC 3161 timestamps of certificates (src/seals ProofStamps), as the records module uses them. */
export interface CertificateStamps {
  queue(kind: string, subject: string, body: string, shared: SharedDb): Promise<void>;
  of(
    kind: string,
    subject: string,
  ): Promise<{ state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string }>;
}

/** the kind under which destruction certificates are timestamped */
export const CERTIFICATE_STAMP = 'destruction-certificate';

/**
 * The vault's retention guard: refuses (409 `RETENTION_ACTIVE` before term, `LEGAL_HOLD` while
 * held) to trash or destroy, and refuses moves that would shorten a document's keeping or lift a
 * hold. Writes each destruction certificate in the vault's deleting transaction.
 */
export function retentionGuard(o: GuardOptions): RetentionGuard {
  const refuseHeld = (a: Applicable) => {
    if (a.holds.length) throw recordsErrors.legalHold(a.holds.map((h) => h.id));
  };
  return {
    async assertDestroyable(doc: GuardedDocument, at: number) {
      const a = await applicable(o.db, doc.workspaceId, doc.folderChain, doc.id);
      refuseHeld(a);
      const term = until(doc.depositedAt, a.minDays);
      if (a.minDays > 0 && at < term) throw recordsErrors.retentionActive(new Date(term).toISOString());
    },
    async assertMovable(doc: GuardedDocument, toChain: string[], at: number) {
      const before = await applicable(o.db, doc.workspaceId, doc.folderChain, doc.id);
      const after = await applicable(o.db, doc.workspaceId, toChain, doc.id);
      const kept = new Set(after.holds.map((h) => h.id));
      if (before.holds.some((h) => !kept.has(h.id)))
        throw recordsErrors.legalHold(before.holds.filter((h) => !kept.has(h.id)).map((h) => h.id));
      const term = until(doc.depositedAt, before.minDays);
      if (before.minDays > after.minDays && at < term)
        throw recordsErrors.retentionActive(new Date(term).toISOString());
    },
    async assertFolderMovable(workspaceId: string, _folderId: string, fromChain: string[], toChain: string[]) {
      const before = await applicable(o.db, workspaceId, fromChain);
      const after = await applicable(o.db, workspaceId, toChain);
      const kept = new Set(after.holds.map((h) => h.id));
      if (before.holds.some((h) => !kept.has(h.id)))
        throw recordsErrors.legalHold(before.holds.filter((h) => !kept.has(h.id)).map((h) => h.id));
      // strict: what the folder holds may still be within the longer period
      if (before.minDays > after.minDays) throw recordsErrors.retentionActive(null);
    },
    async certify(shared, r: DestructionRecord) {
      const trx: RecordsDb = shared;
      const a = await applicable(trx, r.workspaceId, []);
      const id = crypto.randomUUID();
      const seal = o.signer
        ? { certificateFingerprint: (await o.signer.certificate()).fingerprint, algorithm: 'ECDSA-P256-SHA256' }
        : null;
      const body = { ...certificateBody(id, o.applianceId, r, a.minDays), seal };
      const text = canonicalJson(body);
      const signature = o.signer ? (await o.signer.sign(Buffer.from(text, 'utf8'))).toString('base64') : null;
      await trx
        .insertInto('records_certificates')
        .values({
          id,
          document_id: r.documentId,
          workspace_id: r.workspaceId,
          destroyed_at: r.destroyedAt,
          body: text,
          sha256: crypto.createHash('sha256').update(text).digest('hex'),
          signature,
        })
        .execute();
      // a certificate is timestamped once signed: the TSA is asked by the retrier, after the commit
      if (signature !== null) await o.stamps?.queue(CERTIFICATE_STAMP, id, text, shared);
    },
  };
}

/** The certificate: what was destroyed (ids, digests, sizes), when it was deposited, trashed and destroyed, by whom, and which data keys were destroyed. */
export function certificateBody(id: string, applianceId: string, r: DestructionRecord, workspaceMinDays: number) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    type: 'coffre.destruction-certificate',
    version: 1,
    id,
    appliance: applianceId,
    object: { kind: 'document', id: r.documentId, workspace: r.workspaceId, folder: r.folderId },
    versions: r.versions.map((v) => ({
      version: v.version,
      sha256: v.sha256,
      size: v.size,
      depositedAt: iso(v.depositedAt),
      depositedBy: v.depositedBy,
    })),
    depositedAt: iso(r.versions.length ? Math.min(...r.versions.map((v) => v.depositedAt)) : null),
    trashedAt: iso(r.trashedAt),
    destroyedAt: iso(r.destroyedAt),
    actor: r.actor,
    keysDestroyed: r.versions.map((v) => v.keyId),
    method:
      'crypto-shredding: each version was encrypted under its own data key; the keys were destroyed, then the encrypted blobs deleted',
    workspaceRetentionDays: workspaceMinDays,
  };
}
