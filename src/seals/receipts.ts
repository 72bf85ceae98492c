import crypto from 'node:crypto';
import type { SealsDb, SharedDb } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { isAppError } from '../shared/errors.js';
import type { PendingTimestamps, Sealer, Timestamper } from './types.js';

/** Format of deposit receipts (docs/formats.md "Deposit receipts"). */
export const RECEIPT_TYPE = 'coffre.deposit-receipt';
export const RECEIPT_VERSION = 1;

/** What a deposit was, as the vault knows it when the version commits. */
export interface DepositFacts {
  workspaceId: string;
  documentId: string;
  versionId: string;
  /** `doc.create` (new document) or `doc.write` (new version) */
  action: string;
  /** hex SHA-256 of the plaintext */
  sha256: string;
  size: number;
  mediaType: string;
  /** `user:<id>`, `token:<id>`, … and the user name when known (user names are not confidential) */
  depositor: { actor: string; userId?: string; username?: string };
  /** the document's name, only when the depositor asked for it in the receipt */
  name?: string;
}

/** A receipt promised before the deposit's transaction: its facts already encrypted. */
export interface PreparedReceipt {
  id: string;
  workspaceId: string;
  documentId: string;
  factsEnc: string;
}

/** A receipt as handed out: the exact signed bytes, the signature, the certificate, the token. */
export interface ReceiptView {
  id: string;
  documentId: string;
  version: number;
  workspaceId: string;
  /** the exact signed bytes (UTF-8 JSON) */
  body: string;
  /** hex SHA-256 of `body` */
  sha256: string;
  /** base64 DER ECDSA-Sig-Value over `body` */
  signature: string;
  certificate: { fingerprint: string; pem: string };
  timestamp: { state: 'none' | 'pending' | 'granted'; token?: string; genTime?: string };
}

export interface DepositReceiptsOptions {
  db: SealsDb;
  fields: FieldCipher;
  sealer: Sealer;
  clock: Clock;
  log: Logger;
  applianceId: string;
  /** RFC 3161 timestamps of each receipt (pending while no TSA answers, then retried) */
  timestamper?: Timestamper;
}

const scopeOf = (workspaceId: string) => `receipts.ws.${workspaceId.toLowerCase()}`;
const ctx = {
  facts: (id: string) => `seal_receipts.facts:${id}`,
  body: (id: string) => `seal_receipts.body:${id}`,
};
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Deposit receipts (docs/proofs.md "Deposit receipts"): for every version deposited, a JSON
 * receipt signed by the sealing key and timestamped (RFC 3161) when a TSA is configured.
 *
 * - `prepare` (before the deposit's transaction) encrypts the facts; `record` (inside it) writes
 *   the row with the audit record's seq and hash, so a version never commits without its receipt;
 * - `issue` (right after the commit) builds the body and signs it in the HSM, then asks the TSA in
 *   the background; a receipt the HSM could not sign then is signed when fetched or by the retrier;
 * - nothing confidential is in clear at rest: the facts and the body are FieldCipher ciphertext,
 *   and the body carries a random salt, so the signature and the token confirm no guessed digest.
 */
export class DepositReceipts {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly o: DepositReceiptsOptions) {}

  async prepare(f: DepositFacts): Promise<PreparedReceipt> {
    const id = crypto.randomUUID();
    const facts = { ...f, salt: crypto.randomBytes(16).toString('hex') };
    return {
      id,
      workspaceId: f.workspaceId,
      documentId: f.documentId,
      factsEnc: await this.o.fields.encrypt(scopeOf(f.workspaceId), JSON.stringify(facts), ctx.facts(id)),
    };
  }

  /**
   * Inside the deposit's transaction: the version's receipt row, with the version number, the
   * deposit time (the version's `created_at`, ms) and the audit record's place.
   */
  async record(
    shared: SharedDb,
    p: PreparedReceipt,
    at: { version: number; depositedAt: number; audit: { seq: number; hash: string } },
  ): Promise<void> {
    const { version, audit } = at;
    const trx: SealsDb = shared;
    await trx
      .insertInto('seal_receipts')
      .values({
        id: p.id,
        document_id: p.documentId,
        version,
        workspace_id: p.workspaceId,
        facts_enc: p.factsEnc,
        audit_seq: audit.seq,
        audit_hash: audit.hash,
        created_at: at.depositedAt,
        body_enc: null,
        signature: null,
        cert_fingerprint: null,
        signed_at: null,
        ts_state: this.o.timestamper?.configured ? 'pending' : 'none',
        ts_token: null,
        ts_at: null,
        ts_attempts: 0,
      })
      .execute();
  }

  /** Inside a document's destruction: its receipts go with it (the destruction certificate takes over). */
  async forget(shared: SharedDb, documentId: string): Promise<void> {
    const trx: SealsDb = shared;
    await trx.deleteFrom('seal_receipts').where('document_id', '=', documentId).execute();
  }

  /**
   * After the commit: signs the receipt now and asks the TSA in the background (`settled` waits for
   * it). Never throws: an HSM that cannot sign now leaves the receipt for `get` or the retrier.
   */
  async issue(id: string): Promise<void> {
    try {
      const body = await this.sign(id);
      if (body) this.track(id, this.timestampNow(id, body));
    } catch (e) {
      this.o.log.warn(
        { code: isAppError(e) ? e.code : undefined, receipt: id },
        'deposit receipt not signed yet; it will be when fetched or retried',
      );
    }
  }

  /** Resolves once the background timestamps asked so far are settled. */
  async settled(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight.values()]);
  }

  /**
   * The receipt of a version (newest when `version` is not given), signed now if it was not yet
   * (503 KEYS_UNAVAILABLE while the HSM is down); null when there is none. The caller checked the
   * reader's access to the document.
   */
  async get(documentId: string, version?: number): Promise<ReceiptView | null> {
    let q = this.o.db.selectFrom('seal_receipts').select('id').where('document_id', '=', documentId);
    q = version !== undefined ? q.where('version', '=', version) : q.orderBy('version', 'desc').limit(1);
    const found = await q.executeTakeFirst();
    if (!found) return null;
    await this.inflight.get(found.id);
    let row = await this.row(found.id);
    if (row.signature === null) {
      await this.sign(found.id);
      row = await this.row(found.id);
    }
    const body = await this.o.fields.decrypt(row.body_enc!, ctx.body(row.id));
    const cert =
      (await this.o.sealer.certificates()).find((c) => c.fingerprint === row.cert_fingerprint) ??
      (await this.o.sealer.certificate());
    return {
      id: row.id,
      documentId: row.document_id,
      version: Number(row.version),
      workspaceId: row.workspace_id,
      body,
      sha256: crypto.createHash('sha256').update(body).digest('hex'),
      signature: row.signature!,
      certificate: { fingerprint: cert.fingerprint, pem: cert.pem },
      timestamp:
        row.ts_state === 'granted' && row.ts_token
          ? { state: 'granted', token: row.ts_token, genTime: iso(Number(row.ts_at)) }
          : { state: row.ts_state === 'pending' ? 'pending' : 'none' },
    };
  }

  /** The receipt id of a version, if it has one. */
  async idOf(documentId: string, version: number): Promise<string | undefined> {
    const r = await this.o.db
      .selectFrom('seal_receipts')
      .select('id')
      .where('document_id', '=', documentId)
      .where('version', '=', version)
      .executeTakeFirst();
    return r?.id;
  }

  /** Ids of a document's receipts, oldest version first (export). */
  async versionsOf(documentId: string): Promise<number[]> {
    const rows = await this.o.db
      .selectFrom('seal_receipts')
      .select('version')
      .where('document_id', '=', documentId)
      .orderBy('version', 'asc')
      .execute();
    return rows.map((r) => Number(r.version));
  }

  /** Signs up to `limit` receipts the HSM could not sign at deposit time; returns how many were. */
  async signUnsigned(limit = 100): Promise<number> {
    const rows = await this.o.db
      .selectFrom('seal_receipts')
      .select('id')
      .where('signed_at', 'is', null)
      .orderBy('created_at', 'asc')
      .limit(limit)
      .execute();
    let n = 0;
    for (const r of rows) if (await this.sign(r.id)) n += 1;
    return n;
  }

  /** The receipts waiting for their timestamp, for the retrier (src/seals/retrier.ts). */
  pendingSource(): PendingTimestamps {
    return {
      name: 'receipt',
      pending: async (limit) => {
        await this.signUnsigned(limit).catch(() => 0);
        const rows = await this.o.db
          .selectFrom('seal_receipts')
          .select(['id', 'body_enc', 'created_at'])
          .where('ts_state', '=', 'pending')
          .where('body_enc', 'is not', null)
          .orderBy('created_at', 'asc')
          .limit(limit)
          .execute();
        const out: { id: string; data: Buffer; since: number }[] = [];
        for (const r of rows) {
          if (this.inflight.has(r.id)) continue;
          const body = await this.o.fields.decrypt(r.body_enc!, ctx.body(r.id));
          out.push({ id: r.id, data: Buffer.from(body, 'utf8'), since: Number(r.created_at) });
        }
        return out;
      },
      granted: (id, t) => this.granted(id, t),
    };
  }

  /** Builds and signs the body of an unsigned receipt; returns it (null when another process did). */
  private async sign(id: string): Promise<string | null> {
    const row = await this.row(id);
    if (row.signature !== null) return null;
    const facts = JSON.parse(await this.o.fields.decrypt(row.facts_enc, ctx.facts(id))) as DepositFacts & {
      salt: string;
    };
    const cert = await this.o.sealer.certificate();
    const body = `${JSON.stringify(
      {
        type: RECEIPT_TYPE,
        version: RECEIPT_VERSION,
        receiptId: id,
        applianceId: this.o.applianceId,
        deposit: {
          action: facts.action,
          workspaceId: facts.workspaceId,
          documentId: facts.documentId,
          version: Number(row.version),
          versionId: facts.versionId,
          depositedAt: iso(Number(row.created_at)),
          depositor: {
            actor: facts.depositor.actor,
            ...(facts.depositor.userId ? { userId: facts.depositor.userId } : {}),
            ...(facts.depositor.username ? { username: facts.depositor.username } : {}),
          },
        },
        content: { sha256: facts.sha256, size: facts.size, mediaType: facts.mediaType },
        ...(facts.name !== undefined ? { name: facts.name } : {}),
        audit: { seq: Number(row.audit_seq), hash: row.audit_hash },
        salt: facts.salt,
        issuedAt: iso(this.o.clock.nowMs()),
        certificateSha256: cert.fingerprint,
      },
      null,
      2,
    )}\n`;
    const signature = await this.o.sealer.sign(Buffer.from(body, 'utf8'));
    const bodyEnc = await this.o.fields.encrypt(scopeOf(row.workspace_id), body, ctx.body(id));
    const r = await this.o.db
      .updateTable('seal_receipts')
      .set({
        body_enc: bodyEnc,
        signature: signature.toString('base64'),
        cert_fingerprint: cert.fingerprint,
        signed_at: this.o.clock.nowMs(),
        // a token is only ever asked for the signed body
        ts_state: this.o.timestamper?.configured ? 'pending' : 'none',
        ts_token: null,
        ts_at: null,
      })
      .where('id', '=', id)
      .where('signature', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1 ? body : null;
  }

  private async timestampNow(id: string, body: string): Promise<void> {
    if (!this.o.timestamper?.configured) return;
    try {
      await this.granted(id, await this.o.timestamper.timestamp(Buffer.from(body, 'utf8')));
    } catch {
      await this.o.db
        .updateTable('seal_receipts')
        .set((eb) => ({ ts_attempts: eb('ts_attempts', '+', 1) }))
        .where('id', '=', id)
        .execute()
        .catch(() => undefined);
    }
  }

  private async granted(id: string, t: { response: Buffer; genTime: Date }): Promise<void> {
    await this.o.db
      .updateTable('seal_receipts')
      .set({ ts_state: 'granted', ts_token: t.response.toString('base64'), ts_at: t.genTime.getTime() })
      .where('id', '=', id)
      .where('ts_state', '=', 'pending')
      .execute();
  }

  private track(id: string, p: Promise<void>): void {
    const done = p.catch(() => undefined).finally(() => this.inflight.delete(id));
    this.inflight.set(id, done);
  }

  private row(id: string) {
    return this.o.db.selectFrom('seal_receipts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }
}
