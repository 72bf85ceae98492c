import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { num, type VaultCore } from './core.js';
import { vaultErrors } from './errors.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { VaultCaller } from './types.js';

/** One version that failed its check. Ids only. */
export interface VerifyFailure {
  documentId: string;
  workspaceId: string;
  version: number;
  blobId: string;
  /** INTEGRITY (a chunk's tag failed: altered, truncated, spliced), DIGEST_MISMATCH, SIZE_MISMATCH, MISSING (blob absent), KEY (data key unusable) */
  problem: string;
}

export interface VerifyReport {
  type: 'coffre.integrity-report';
  formatVersion: 1;
  scope: { kind: 'document' | 'workspace' | 'all'; id: string | null };
  startedAt: string;
  finishedAt: string;
  documents: number;
  versions: number;
  /** plaintext bytes read and checked */
  bytes: number;
  ok: boolean;
  failures: VerifyFailure[];
  /**
   * ECDSA signature by the appliance's sealing key over the canonical JSON (src/shared/canonical-json.ts)
   * of this report without `seal`; absent when no sealing key is wired
   */
  seal?: { algorithm: 'ECDSA-P256-SHA256'; certificateFingerprint: string; signature: string };
  /** RFC 3161 timestamp over the same signed bytes, when a TSA is configured (docs/proofs.md) */
  timestamp?: { state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string };
}

export type VerifyScope = { kind: 'document'; id: string } | { kind: 'workspace'; id: string } | { kind: 'all' };

export interface VerifyOptions {
  /** bounded rate (plaintext bytes per second; 0 = as fast as the disk and the CPU go) */
  bytesPerSecond?: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

/** A sink that counts bytes and, with a rate, paces itself (the scrub must not starve users). */
function pacedSink(rate: number, counted: { bytes: number }, startMs: number): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, done) {
      counted.bytes += chunk.length;
      if (rate <= 0) return done();
      const due = startMs + (counted.bytes / rate) * 1000 - Date.now();
      if (due > 5) void sleep(due).then(() => done());
      else done();
    },
  });
}

function classify(e: unknown): string {
  const code = String((e as { code?: unknown }).code ?? '');
  if (code === 'INTEGRITY_DIGEST') return 'DIGEST_MISMATCH';
  if (code === 'INTEGRITY_SIZE') return 'SIZE_MISMATCH';
  if (code.includes('INTEGRITY') || code === 'ERR_OSSL_BAD_DECRYPT') return 'INTEGRITY';
  if (code === 'ENOENT' || code.includes('NOT_FOUND') || code === 'BLOB_MISSING') return 'MISSING';
  if (code.startsWith('KEY')) return 'KEY';
  return code || 'READ_FAILED';
}

/**
 * Integrity control: re-reads each version's blob through the decrypting reader (every chunk's
 * GCM tag is checked; truncation, reordering and splicing fail there), hashes the plaintext and
 * compares it and its size with the recorded SHA-256 and size. Nothing is released: the bytes
 * go to a counting sink. Does not audit or alert: callers do (route, CLI, scrub job).
 */
export async function verifyVersions(
  core: VaultCore,
  scope: VerifyScope,
  o: VerifyOptions = {},
): Promise<VerifyReport> {
  const started = core.now();
  let q = core.db
    .selectFrom('vault_versions')
    .innerJoin('vault_documents', 'vault_documents.id', 'vault_versions.document_id')
    .select([
      'vault_versions.id',
      'vault_versions.document_id',
      'vault_documents.workspace_id',
      'vault_versions.version',
      'vault_versions.blob_id',
      'vault_versions.key_id',
      'vault_versions.size',
      'vault_versions.sha256',
      'vault_versions.sha256_enc',
    ])
    .where('vault_documents.purged_at', 'is', null);
  if (scope.kind === 'document') q = q.where('vault_versions.document_id', '=', scope.id);
  if (scope.kind === 'workspace') q = q.where('vault_documents.workspace_id', '=', scope.id);
  const rows = await q.orderBy('vault_versions.document_id').orderBy('vault_versions.version').execute();
  const counted = { bytes: 0 };
  const t0 = Date.now();
  const failures: VerifyFailure[] = [];
  for (const [i, v] of rows.entries()) {
    if (o.signal?.aborted) break;
    const size = num(v.size);
    const fail = (problem: string) =>
      failures.push({
        documentId: v.document_id,
        workspaceId: v.workspace_id,
        version: num(v.version),
        blobId: v.blob_id,
        problem,
      });
    try {
      const sha256 = await core.versionDigest(v);
      const check = (got: { sha256: string; size: number }) => {
        if (got.size !== size) return Object.assign(new Error('size mismatch'), { code: 'INTEGRITY_SIZE' });
        if (got.sha256 !== sha256) return Object.assign(new Error('digest mismatch'), { code: 'INTEGRITY_DIGEST' });
        return undefined;
      };
      await pipeline(
        await core.d.blobs.read(v.blob_id, v.key_id, undefined, check),
        pacedSink(o.bytesPerSecond ?? 0, counted, t0),
      );
    } catch (e) {
      fail(classify(e));
    }
    o.progress?.(i + 1, rows.length);
  }
  return {
    type: 'coffre.integrity-report',
    formatVersion: 1,
    scope: { kind: scope.kind, id: scope.kind === 'all' ? null : scope.id },
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(core.now()).toISOString(),
    documents: new Set(rows.map((r) => r.document_id)).size,
    versions: rows.length,
    bytes: counted.bytes,
    ok: failures.length === 0,
    failures,
  };
}

/**
 * Raises one critical alert per failed version (ids only), records the check in the audit trail,
 * and signs the report with the sealing key (fail closed: an unsigned report is refused).
 */
export async function reportVerify(
  core: VaultCore,
  actor: string,
  r: VerifyReport,
  source?: VaultCaller['source'],
): Promise<VerifyReport> {
  for (const f of r.failures) {
    await core.d.alerts.raise({
      kind: 'vault.integrity',
      severity: 'critical',
      message: `document version failed its integrity check (${f.problem})`,
      targets: { workspace: f.workspaceId, document: f.documentId, version: String(f.version) },
    });
  }
  await core.d.audit.recordNow({
    action: 'vault.verify',
    actor,
    outcome: r.ok ? 'success' : 'failure',
    ...(r.ok ? {} : { reason: 'INTEGRITY' }),
    targets: {
      scope: r.scope.kind,
      ...(r.scope.id ? { [r.scope.kind]: r.scope.id } : {}),
      versions: String(r.versions),
      failed: String(r.failures.length),
    },
    ...(source ? { source } : {}),
  });
  const signer = core.d.signer;
  if (!signer) return r;
  const { seal: _unsigned, timestamp: _unstamped, ...body } = r;
  const certificateFingerprint = (await signer.certificate()).fingerprint;
  const text = canonicalJson(body);
  const signature = (await signer.sign(Buffer.from(text, 'utf8'))).toString('base64');
  const sealed = { ...body, seal: { algorithm: 'ECDSA-P256-SHA256' as const, certificateFingerprint, signature } };
  await core.d.reports?.keep({
    body: text,
    signature,
    certificateFingerprint,
    scope: r.scope,
    ok: r.ok,
    versions: r.versions,
    failures: r.failures.length,
    actor,
  });
  const stamps = core.d.stamps;
  if (!stamps?.configured) return sealed;
  const sha256 = crypto.createHash('sha256').update(text, 'utf8').digest('hex');
  return { ...sealed, timestamp: await stamps.stamp('integrity-report', sha256, text) };
}

/** A member's check of one document (any role: it releases no content). */
export async function verifyDocument(core: VaultCore, c: VaultCaller, id: string): Promise<VerifyReport> {
  const { doc } = await core.document(c, id, 'viewer', 'vault.verify');
  if (!doc) throw vaultErrors.documentNotFound();
  const r = await verifyVersions(core, { kind: 'document', id });
  return reportVerify(core, c.actor.id, r, c.source);
}
