import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { isAppError } from '../shared/errors.js';
import { ctx, newBlobId, num, type VaultCore } from './core.js';
import { NAME_INDEX_FORMAT, indexRows, type IndexRow } from './name-index.js';
import { vaultErrors } from './errors.js';
import { Meter } from './streams.js';
import type { VaultCaller, WorkspaceView } from './types.js';
import type { PreparedReceipt } from '../seals/index.js';
import { handOver, handedOver } from '../shared/buffers.js';
import { unwaited } from '../db/index.js';
import { pumped } from '../shared/pump.js';

/** What to upload into: a new document, or a new version of an existing one. */
export type UploadTarget =
  | { kind: 'new'; workspaceId: string; folderId: string | null; name: string; description?: string; tags?: string[] }
  | { kind: 'version'; documentId: string };

export interface UploadBody {
  stream: Readable;
  /** Content-Length, when known: the body is refused as soon as it runs past it */
  declaredLength?: number;
  mediaType: string;
  /** hex SHA-256 the client announced up front (Content-Digest / Repr-Digest header) */
  expectedSha256?: string;
  /**
   * Called once the body has ended, before anything commits: checks what is only known then
   * (a digest sent as a trailer, bytes past Content-Length). Throws to refuse the upload.
   */
  finish?: () => Promise<{ expectedSha256?: string } | void> | { expectedSha256?: string } | void;
  /**
   * The client's `Idempotency-Key`: a retry carrying the same key (same user, same target, within
   * IDEMPOTENCY_TTL_MS) gets the version the first attempt created instead of a new one.
   */
  idempotencyKey?: string;
  /** the depositor asks for the document's name in the deposit receipt (left out by default) */
  receiptName?: boolean;
}

export interface UploadResult {
  id: string;
  workspaceId: string;
  version: number;
  size: number;
  sha256: string;
  created: boolean;
  /** the deposit receipt's id (GET /documents/{id}/receipt?version=N) */
  receipt?: string;
  /** true when an earlier upload with the same idempotency key created this version */
  replayed?: boolean;
}

const MAX_VERSION_RETRIES = 5;

/** How long an idempotency key is remembered (the hourly sweep forgets older ones). */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** An `Idempotency-Key` header value, checked (never echoed: it is the client's text). */
export function checkIdempotencyKey(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !IDEMPOTENCY_KEY.test(v))
    throw vaultErrors.invalidInput('Idempotency-Key must be 1 to 255 visible ASCII characters, sent once');
  return v;
}

interface IdempotencyScope {
  actor: string;
  keyHash: string;
  /** `ws:<id>` (new document) or `doc:<id>` (new version) */
  target: string;
}

function idempotencyScope(c: VaultCaller, key: string, target: string): IdempotencyScope {
  return {
    actor: c.actor.userId ? `user:${c.actor.userId}` : c.actor.id,
    keyHash: crypto.createHash('sha256').update(key).digest('hex'),
    target,
  };
}

/** The version an earlier upload with this key created, if any (the caller's access was checked). */
async function replay(core: VaultCore, s: IdempotencyScope, workspaceId: string): Promise<UploadResult | undefined> {
  const row = await core.db
    .selectFrom('vault_idempotency as i')
    .leftJoin('vault_versions as v', (j) =>
      j.onRef('v.document_id', '=', 'i.document_id').onRef('v.version', '=', 'i.version'),
    )
    .select(['i.target', 'i.document_id', 'i.version', 'v.id as version_id', 'v.size', 'v.sha256', 'v.sha256_enc'])
    .where('i.actor_id', '=', s.actor)
    .where('i.key_hash', '=', s.keyHash)
    .where('i.created_at', '>', core.now() - IDEMPOTENCY_TTL_MS)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.target !== s.target) throw vaultErrors.idempotencyKeyReused();
  if (row.size === null || row.sha256 === null || row.version_id === null) throw vaultErrors.documentNotFound();
  const sha256 = await core.versionDigest({ id: row.version_id, sha256: row.sha256, sha256_enc: row.sha256_enc });
  const receipt = await core.d.receipts?.idOf(row.document_id, num(row.version));
  return {
    id: row.document_id,
    workspaceId,
    version: num(row.version),
    size: num(row.size),
    sha256,
    created: s.target.startsWith('ws:'),
    ...(receipt ? { receipt } : {}),
    replayed: true,
  };
}

/**
 * Streams a body into a new encrypted blob and commits a version for it. Crash-safe order
 * (invariant 7): a pending-upload row (blob id, key id) commits first; the blob is written,
 * fsynced and renamed by the store; then ONE transaction inserts the version, moves the head,
 * counts usage against the quota, deletes the pending row and writes the audit record. A crash
 * anywhere leaves either a committed version or a pending row that orphan collection removes with
 * its blob and data key. Any failure (client gone, too large, digest mismatch) removes the blob
 * and destroys its key before answering.
 */
export async function upload(
  core: VaultCore,
  c: VaultCaller,
  target: UploadTarget,
  body: UploadBody,
): Promise<UploadResult> {
  const { d } = core;
  const action = target.kind === 'new' ? 'doc.create' : 'doc.write';
  let ws: WorkspaceView;
  let documentId: string;
  let nameEnc: string | undefined;
  if (target.kind === 'new') {
    ws = await core.workspace(c, target.workspaceId, 'editor', action);
    if (target.folderId !== null) await core.folderIn(ws.id, target.folderId);
    documentId = crypto.randomUUID();
  } else {
    const r = await core.document(c, target.documentId, 'editor', action);
    if (r.doc.trashed_at !== null) throw vaultErrors.inTrash();
    ws = r.ws;
    documentId = r.doc.id;
    nameEnc = r.doc.name_enc;
  }
  const idem =
    body.idempotencyKey !== undefined
      ? idempotencyScope(c, body.idempotencyKey, target.kind === 'new' ? `ws:${ws.id}` : `doc:${documentId}`)
      : undefined;
  if (idem) {
    const prior = await replay(core, idem, ws.id);
    if (prior) {
      body.stream.resume(); // the retry's bytes are not needed: read and dropped
      return prior;
    }
  }

  // Limits known before reading a byte.
  const max = d.config.maxUploadBytes;
  const quota = core.quotaOf(ws);
  const used = quota > 0 ? await core.usedBytes(ws.id) : 0;
  if (body.declaredLength !== undefined) {
    if (body.declaredLength > max) throw vaultErrors.tooLarge(max);
    if (quota > 0 && used + body.declaredLength > quota) throw vaultErrors.quotaExceeded(quota, used);
  }
  const room = quota > 0 ? Math.max(0, quota - used) : Number.POSITIVE_INFINITY;
  const limit = Math.min(max, room);
  // A body longer than it declared stops at the first byte past it: the blob writer may have
  // chosen its path (inline for a small one) from the declared length.
  const declared = body.declaredLength ?? Number.POSITIVE_INFINITY;
  // pieces freed as they are encrypted leave no garbage: the meter's collections are for the others
  const meter = new Meter(
    Math.min(limit, declared),
    () =>
      declared < limit
        ? vaultErrors.lengthMismatch(declared, meter.bytes)
        : limit === max
          ? vaultErrors.tooLarge(max)
          : vaultErrors.quotaExceeded(quota, used),
    { collect: !handedOver(body.stream) },
  );

  // Encrypted fields of a new document, before any transaction (the cipher may use the database).
  let enc: CommitArgs['enc'];
  if (target.kind === 'new') {
    enc = {
      name: await core.encrypt(ws.id, target.name, ctx.docName(documentId)),
      description:
        target.description !== undefined
          ? await core.encrypt(ws.id, target.description, ctx.docDescription(documentId))
          : null,
      tags: target.tags?.length
        ? await core.encrypt(ws.id, JSON.stringify(target.tags), ctx.docTags(documentId))
        : null,
      index: await indexRows(d.fields, ws.id, documentId, target.name, target.tags ?? []),
    };
  }

  const blobId = newBlobId();
  const grace = d.config.pendingUploadGraceMs;
  // The data key and the pending row are not waited for on the disk: the version's commit is, and
  // brings them with it. Lost at a power cut before it, they leave at most a blob no row names,
  // encrypted under a key that no longer exists, which orphan collection removes.
  const dek = await unwaited(async () => {
    const key = await d.dataKeys.create(`doc:${documentId}:${blobId}`);
    const started = core.now();
    await core.db
      .insertInto('vault_uploads')
      .values({
        blob_id: blobId,
        key_id: key.keyId,
        workspace_id: ws.id,
        started_at: started,
        expires_at: started + grace,
      })
      .execute();
    return key;
  });
  // Keep the pending row alive while the body streams, however long it takes.
  const heartbeat = setInterval(
    () => {
      void core.db
        .updateTable('vault_uploads')
        .set({ expires_at: core.now() + grace })
        .where('blob_id', '=', blobId)
        .execute()
        .catch(() => undefined);
    },
    Math.max(1000, Math.floor(grace / 3)),
  );
  heartbeat.unref();

  try {
    const [piped, stored] = await Promise.allSettled([
      pumped(body.stream, meter),
      d.blobs.write(
        blobId,
        dek,
        handedOver(body.stream) ? handOver(meter) : meter,
        body.declaredLength !== undefined ? { maxBytes: body.declaredLength } : {},
      ),
    ]);
    if (piped.status === 'rejected' || stored.status === 'rejected') {
      throw pickError(
        piped.status === 'rejected' ? piped.reason : undefined,
        stored.status === 'rejected' ? stored.reason : undefined,
      );
    }
    const { storedSize, sha256 } = stored.value;
    const size = meter.bytes;
    if (body.declaredLength !== undefined && size !== body.declaredLength)
      throw vaultErrors.lengthMismatch(body.declaredLength, size);
    const late = (await body.finish?.()) ?? {};
    const expected = late.expectedSha256 ?? body.expectedSha256;
    if (expected !== undefined && expected !== sha256) throw vaultErrors.digestMismatch();

    // the digest is confidential too (it confirms a guessed document): stored encrypted
    const versionId = crypto.randomUUID();
    const sha256Enc = await core.encrypt(ws.id, sha256, ctx.versionDigest(versionId));
    const receipt = await d.receipts?.prepare({
      workspaceId: ws.id,
      documentId,
      versionId,
      action,
      sha256,
      size,
      mediaType: body.mediaType,
      depositor: {
        actor: c.actor.id,
        ...(c.actor.userId ? { userId: c.actor.userId } : {}),
        ...(c.actor.username ? { username: c.actor.username } : {}),
      },
      ...(body.receiptName
        ? { name: target.kind === 'new' ? target.name : await core.docName(documentId, nameEnc!) }
        : {}),
    });
    const version = await commit(core, c, {
      target,
      ws,
      documentId,
      blobId,
      keyId: dek.keyId,
      size,
      storedSize,
      versionId,
      sha256Enc,
      mediaType: body.mediaType,
      quota,
      enc,
      idem,
      receipt,
    });
    // the signature is not waited for on the disk: lost at a power cut, it is made again when fetched
    if (receipt) await unwaited(() => d.receipts!.issue(receipt.id));
    if (target.kind === 'new' && enc) {
      core.names.set(documentId, enc.name, target.name);
      if (enc.tags !== null) core.tags.set(documentId, enc.tags, JSON.stringify(target.tags));
    }
    d.log.info({ event: 'vault.upload', document: documentId, version, size }, 'version stored');
    return {
      id: documentId,
      workspaceId: ws.id,
      version,
      size,
      sha256,
      created: target.kind === 'new',
      ...(receipt ? { receipt: receipt.id } : {}),
    };
  } catch (e) {
    if (isAppError(e) && e.code === 'STORAGE_FULL')
      void d.alerts
        .raise({ kind: 'storage.full', severity: 'critical', message: e.message, targets: { store: 'blobs' } })
        .catch(() => undefined);
    await discard(core, blobId, dek.keyId);
    // the same key committed meanwhile (two attempts in flight at once): that version is the answer
    const prior = idem && (await replay(core, idem, ws.id).catch(() => undefined));
    if (prior) return prior;
    throw e;
  } finally {
    clearInterval(heartbeat);
    dek.key.fill(0);
  }
}

/** The error to report: ours (too large, length) over a downstream "premature close". */
function pickError(source: unknown, sink: unknown): unknown {
  if (isAppError(source)) return source;
  if (isAppError(sink)) return sink;
  if (source !== undefined) {
    const code = (source as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (source as Error).message === 'aborted')
      return vaultErrors.incomplete();
    return source;
  }
  return sink;
}

/** Removes what a failed upload left: blob, data key (never used for committed data), pending row. */
async function discard(core: VaultCore, blobId: string, keyId: string): Promise<void> {
  const { d } = core;
  try {
    await d.blobs.delete(blobId);
    await d.dataKeys.destroy(keyId);
    await core.db.deleteFrom('vault_uploads').where('blob_id', '=', blobId).execute();
  } catch (e) {
    // the pending row stays; orphan collection finishes the job
    d.log.warn({ err: e, blob: blobId }, 'could not clean up a failed upload; orphan collection will');
  }
}

interface CommitArgs {
  target: UploadTarget;
  ws: WorkspaceView;
  documentId: string;
  blobId: string;
  keyId: string;
  size: number;
  storedSize: number;
  versionId: string;
  sha256Enc: string;
  mediaType: string;
  quota: number;
  /** a new document's encrypted fields and its rows in the name index */
  enc: { name: string; description: string | null; tags: string | null; index: IndexRow[] } | undefined;
  idem: IdempotencyScope | undefined;
  /** the deposit receipt promised for this version (src/seals) */
  receipt: PreparedReceipt | undefined;
}

async function commit(core: VaultCore, c: VaultCaller, a: CommitArgs): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await core.db.transaction().execute(async (trx) => {
        const now = core.now();
        let version = 1;
        if (a.target.kind === 'new') {
          if (a.target.folderId !== null) {
            const f = await trx
              .selectFrom('vault_folders')
              .select('id')
              .where('id', '=', a.target.folderId)
              .where('workspace_id', '=', a.ws.id)
              .executeTakeFirst();
            if (!f) throw vaultErrors.folderNotFound();
          }
          await trx
            .insertInto('vault_documents')
            .values({
              id: a.documentId,
              workspace_id: a.ws.id,
              folder_id: a.target.folderId,
              name_enc: a.enc!.name,
              description_enc: a.enc!.description,
              tags_enc: a.enc!.tags,
              head_version: 1,
              head_size: a.size,
              created_at: now,
              created_by: c.actor.id,
              updated_at: now,
              trashed_at: null,
              trashed_by: null,
              purged_at: null,
              name_index: NAME_INDEX_FORMAT,
            })
            .execute();
          for (let i = 0; i < a.enc!.index.length; i += 300)
            await trx
              .insertInto('vault_name_index')
              .values(a.enc!.index.slice(i, i + 300))
              .execute();
        } else {
          const doc = await trx
            .selectFrom('vault_documents')
            .select(['trashed_at', 'purged_at'])
            .where('id', '=', a.documentId)
            .executeTakeFirst();
          if (!doc || doc.purged_at !== null) throw vaultErrors.documentNotFound();
          if (doc.trashed_at !== null) throw vaultErrors.inTrash();
          const top = await trx
            .selectFrom('vault_versions')
            .select((eb) => eb.fn.max('version').as('v'))
            .where('document_id', '=', a.documentId)
            .executeTakeFirst();
          version = num(top?.v ?? 0) + 1;
        }
        await trx
          .insertInto('vault_versions')
          .values({
            id: a.versionId,
            document_id: a.documentId,
            version,
            blob_id: a.blobId,
            key_id: a.keyId,
            size: a.size,
            stored_size: a.storedSize,
            sha256: '',
            sha256_enc: a.sha256Enc,
            media_type: a.mediaType,
            created_at: now,
            created_by: c.actor.id,
          })
          .execute();
        if (a.target.kind === 'version') {
          await trx
            .updateTable('vault_documents')
            .set({ head_version: version, head_size: a.size, updated_at: now })
            .where('id', '=', a.documentId)
            .execute();
        }
        await trx
          .insertInto('vault_usage')
          .values({ workspace_id: a.ws.id, used_bytes: a.size })
          .onConflict((oc) =>
            oc.column('workspace_id').doUpdateSet((eb) => ({ used_bytes: eb('vault_usage.used_bytes', '+', a.size) })),
          )
          .execute();
        if (a.quota > 0) {
          const u = await trx
            .selectFrom('vault_usage')
            .select('used_bytes')
            .where('workspace_id', '=', a.ws.id)
            .executeTakeFirstOrThrow();
          if (num(u.used_bytes) > a.quota) throw vaultErrors.quotaExceeded(a.quota, num(u.used_bytes) - a.size);
        }
        // the pending row must still be ours: if collection took it (a stall past the grace), its
        // blob and key are gone and this version must not commit
        const pending = await trx.deleteFrom('vault_uploads').where('blob_id', '=', a.blobId).executeTakeFirst();
        if (Number(pending.numDeletedRows) !== 1) throw vaultErrors.incomplete();
        if (a.idem) {
          // an expired use of the key is forgotten; a live one (a concurrent attempt that committed
          // first) makes this insert fail, so this version does not commit and that one is the answer
          await trx
            .deleteFrom('vault_idempotency')
            .where('actor_id', '=', a.idem.actor)
            .where('key_hash', '=', a.idem.keyHash)
            .where('created_at', '<=', now - IDEMPOTENCY_TTL_MS)
            .execute();
          await trx
            .insertInto('vault_idempotency')
            .values({
              actor_id: a.idem.actor,
              key_hash: a.idem.keyHash,
              target: a.idem.target,
              document_id: a.documentId,
              version,
              created_at: now,
            })
            .execute();
        }
        const stamp = await core.recordIn(trx, c, a.target.kind === 'new' ? 'doc.create' : 'doc.write', {
          workspace: a.ws.id,
          document: a.documentId,
          version: String(version),
        });
        if (a.receipt) await core.d.receipts!.record(trx, a.receipt, { version, depositedAt: now, audit: stamp });
        return version;
      });
    } catch (e) {
      // two writers raced for the same version number (PostgreSQL): take the next one
      if (attempt < MAX_VERSION_RETRIES && a.target.kind === 'version' && isUniqueViolation(e)) continue;
      throw e;
    }
  }
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    err.code === '23505' ||
    err.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed: vault_versions/.test(err.message ?? '')
  );
}
