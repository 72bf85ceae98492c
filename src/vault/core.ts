import crypto from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { WorkspaceRole } from '../access/index.js';
import type { AuditEvent, AuditStamp, Auditor } from '../audit/types.js';
import type { VaultConfig } from '../config/sections/vault.js';
import type { VaultSchema } from '../db/index.js';
import type { DataKeys, FieldCipher } from '../keys/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { vaultErrors } from './errors.js';
import { NameCache } from './name-cache.js';
import type {
  ActorNames,
  GuardedDocument,
  ReceiptIssuer,
  ReportSigner,
  ReportKeeper,
  ReportStamper,
  RetentionGuard,
  SealedBlobs,
  VaultCaller,
  WorkspaceAccess,
  WorkspaceView,
} from './types.js';

/** Everything the vault's operations use, injected by main.ts. */
export interface VaultDeps {
  db: Kysely<VaultSchema>;
  clock: Clock;
  log: Logger;
  config: VaultConfig;
  dataKeys: DataKeys;
  fields: FieldCipher;
  blobs: SealedBlobs;
  access: WorkspaceAccess;
  audit: Auditor;
  alerts: Alerter;
  /** retention and legal hold (src/records); none: nothing is retained */
  retention?: RetentionGuard;
  /** signs integrity reports (the HSM sealing key); none: reports are unsigned */
  signer?: ReportSigner;
  /** names the authors of versions; none: only their ids are shown */
  actors?: ActorNames;
  /** deposit receipts (src/seals); none: deposits get no receipt */
  receipts?: ReceiptIssuer;
  /** RFC 3161 timestamps of integrity reports (src/seals); none: reports are not timestamped */
  stamps?: ReportStamper;
  /** keeps signed integrity reports (src/seals); none: they are only returned */
  reports?: ReportKeeper;
}

const RANK: Record<WorkspaceRole, number> = { viewer: 1, editor: 2, owner: 3 };

/**
 * Blob ids of document versions: 32 random hex digits (the store shards by the first two) and a
 * suffix that keeps orphan collection to the vault's own blobs.
 */
export const BLOB_SUFFIX = '_doc';
export const newBlobId = (): string => `${crypto.randomBytes(16).toString('hex')}${BLOB_SUFFIX}`;
export const isVaultBlob = (id: string): boolean => /^[0-9a-f]{32}_doc$/.test(id);

/** Row → number (PostgreSQL returns bigint columns as strings). */
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

export const iso = (ms: number | string | null): string | null =>
  ms === null ? null : new Date(num(ms)).toISOString();

/** Field-encryption scope and contexts (bound as AAD, so a value cannot move between rows or columns). */
export const fieldScope = (workspaceId: string) => {
  const scope = `vault.ws.${workspaceId.toLowerCase()}`;
  if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(scope)) throw vaultErrors.workspaceNotFound();
  return scope;
};
export const ctx = {
  docName: (id: string) => `vault_documents.name:${id}`,
  docDescription: (id: string) => `vault_documents.description:${id}`,
  docTags: (id: string) => `vault_documents.tags:${id}`,
  folderName: (id: string) => `vault_folders.name:${id}`,
  versionDigest: (versionId: string) => `vault_versions.sha256:${versionId}`,
};

/** A version row's digest columns. */
export interface DigestColumns {
  id: string;
  sha256: string;
  sha256_enc: string | null;
}

/** The helpers shared by the vault's operations. */
export class VaultCore {
  /** decrypted document names and tag lists (keyed by document id, checked against the ciphertext) */
  readonly names: NameCache;
  readonly tags: NameCache;
  constructor(readonly d: VaultDeps) {
    this.names = new NameCache(d.config.nameCacheEntries);
    this.tags = new NameCache(d.config.nameCacheEntries);
  }

  get db(): Kysely<VaultSchema> {
    return this.d.db;
  }

  now(): number {
    return this.d.clock.nowMs();
  }

  /** An audit event for `caller`. */
  event(
    c: VaultCaller,
    action: string,
    targets: Record<string, string>,
    outcome: AuditEvent['outcome'] = 'success',
    reason?: string,
  ): AuditEvent {
    return {
      action,
      actor: c.actor.id,
      outcome,
      targets,
      ...(reason ? { reason } : {}),
      ...(c.source ? { source: c.source } : {}),
    };
  }

  /** Records a read before its data is released (own transaction; throws = refuse). */
  async recordRead(c: VaultCaller, action: string, targets: Record<string, string>): Promise<void> {
    await this.d.audit.recordNow(this.event(c, action, targets));
  }

  async recordIn(
    trx: Transaction<VaultSchema>,
    c: VaultCaller,
    action: string,
    targets: Record<string, string>,
  ): Promise<AuditStamp> {
    return this.d.audit.record(trx, this.event(c, action, targets));
  }

  /**
   * The caller's view of a workspace with at least role `need`. Unknown and foreign workspaces
   * look the same (404, no existence oracle); a member with too low a role gets 403. Denials are
   * audited.
   */
  async workspace(c: VaultCaller, workspaceId: string, need: WorkspaceRole, action: string): Promise<WorkspaceView> {
    const ws = await this.d.access.view(c.actor, workspaceId);
    if (!ws) {
      await this.d.audit.recordNow(this.event(c, action, { workspace: workspaceId }, 'denied', 'NOT_MEMBER'));
      throw vaultErrors.workspaceNotFound();
    }
    if (RANK[ws.role] < RANK[need]) {
      await this.d.audit.recordNow(this.event(c, action, { workspace: workspaceId }, 'denied', 'ROLE_TOO_LOW'));
      throw vaultErrors.forbidden(need);
    }
    if (need !== 'viewer' && !ws.writable) {
      throw vaultErrors.archived();
    }
    return ws;
  }

  /** A live (not purging) document the caller may act on with role `need`; 404 when not a member. */
  async document(c: VaultCaller, documentId: string, need: WorkspaceRole, action: string) {
    const doc = await this.db
      .selectFrom('vault_documents')
      .selectAll()
      .where('id', '=', documentId)
      .where('purged_at', 'is', null)
      .executeTakeFirst();
    if (!doc) throw vaultErrors.documentNotFound();
    const ws = await this.d.access.view(c.actor, doc.workspace_id);
    if (!ws) {
      await this.d.audit.recordNow(
        this.event(c, action, { workspace: doc.workspace_id, document: documentId }, 'denied', 'NOT_MEMBER'),
      );
      throw vaultErrors.documentNotFound();
    }
    if (RANK[ws.role] < RANK[need]) {
      await this.d.audit.recordNow(
        this.event(c, action, { workspace: doc.workspace_id, document: documentId }, 'denied', 'ROLE_TOO_LOW'),
      );
      throw vaultErrors.forbidden(need);
    }
    if (need !== 'viewer' && !ws.writable) {
      throw vaultErrors.archived();
    }
    return { doc, ws };
  }

  /** A folder of the workspace, or FOLDER_NOT_FOUND. */
  async folderIn(workspaceId: string, folderId: string) {
    const f = await this.db
      .selectFrom('vault_folders')
      .selectAll()
      .where('id', '=', folderId)
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    if (!f) throw vaultErrors.folderNotFound();
    return f;
  }

  /** A folder and its parents up to the root (empty for the root). */
  async folderChain(workspaceId: string, folderId: string | null): Promise<string[]> {
    const chain: string[] = [];
    for (let cur = folderId; cur !== null && chain.length < 10_000;) {
      chain.push(cur);
      const f: { parent_id: string | null } | undefined = await this.db
        .selectFrom('vault_folders')
        .select('parent_id')
        .where('id', '=', cur)
        .where('workspace_id', '=', workspaceId)
        .executeTakeFirst();
      cur = f ? f.parent_id : null;
    }
    return chain;
  }

  /** A document row as retention rules see it. */
  async guarded(doc: { id: string; workspace_id: string; folder_id: string | null }): Promise<GuardedDocument> {
    const v = await this.db
      .selectFrom('vault_versions')
      .select((eb) => eb.fn.max('created_at').as('at'))
      .where('document_id', '=', doc.id)
      .executeTakeFirst();
    return {
      id: doc.id,
      workspaceId: doc.workspace_id,
      folderChain: await this.folderChain(doc.workspace_id, doc.folder_id),
      depositedAt: num(v?.at ?? 0),
    };
  }

  /** Refuses (409) to trash or destroy a document under retention or legal hold; the refusal is audited. */
  async assertDestroyable(
    c: VaultCaller | string,
    doc: { id: string; workspace_id: string; folder_id: string | null },
    action: string,
  ): Promise<void> {
    const guard = this.d.retention;
    if (!guard) return;
    try {
      await guard.assertDestroyable(await this.guarded(doc), this.now());
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'REFUSED';
      const ev =
        typeof c === 'string'
          ? {
              action,
              actor: c,
              outcome: 'denied' as const,
              reason: code,
              targets: { workspace: doc.workspace_id, document: doc.id },
            }
          : this.event(c, action, { workspace: doc.workspace_id, document: doc.id }, 'denied', code);
      await this.d.audit.recordNow(ev);
      throw e;
    }
  }

  quotaOf(ws: WorkspaceView): number {
    return ws.quotaBytes ?? this.d.config.defaultQuotaBytes;
  }

  async usedBytes(workspaceId: string): Promise<number> {
    const r = await this.db
      .selectFrom('vault_usage')
      .select('used_bytes')
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    return r ? num(r.used_bytes) : 0;
  }

  encrypt(workspaceId: string, plaintext: string, context: string): Promise<string> {
    return this.d.fields.encrypt(fieldScope(workspaceId), plaintext, context);
  }

  decrypt(ciphertext: string, context: string): Promise<string> {
    return this.d.fields.decrypt(ciphertext, context);
  }

  /**
   * The plaintext SHA-256 (hex) of a version: decrypted (field key cached: no HSM call); a row not
   * sealed yet (written before digests were encrypted) still holds it in clear.
   */
  async versionDigest(v: DigestColumns): Promise<string> {
    const hex = v.sha256_enc !== null ? await this.d.fields.decrypt(v.sha256_enc, ctx.versionDigest(v.id)) : v.sha256;
    if (!/^[0-9a-f]{64}$/.test(hex)) throw vaultErrors.integrity();
    return hex;
  }

  /** A document's name, from the cache when the row still holds the cached ciphertext. */
  async docName(id: string, enc: string): Promise<string> {
    const hit = this.names.get(id, enc);
    if (hit !== undefined) return hit;
    const name = await this.d.fields.decrypt(enc, ctx.docName(id));
    this.names.set(id, enc, name);
    return name;
  }

  /** A document's tags (JSON array ciphertext, or null for none), cached like names. */
  async docTags(id: string, enc: string | null): Promise<string[]> {
    if (enc === null) return [];
    const hit = this.tags.get(id, enc);
    const json = hit ?? (await this.d.fields.decrypt(enc, ctx.docTags(id)));
    if (hit === undefined) this.tags.set(id, enc, json);
    return JSON.parse(json) as string[];
  }
}
