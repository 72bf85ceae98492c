import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import type { PendingTimestamps, Sealer, Timestamper } from '../seals/index.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { canonicalEncoding, chainHash, GENESIS_HASH } from './canonical.js';
import { checkpointEncoding, rowToCheckpoint } from './checkpoint-format.js';
import { iterateRecords } from './db/rows.js';

/** Format of daily seals (docs/formats.md "Daily audit seals"). */
export const SEAL_TYPE = 'coffre.audit.seal';
export const SEAL_VERSION = 1;
const DAY = 86_400_000;

export interface DailySealOptions {
  db: Kysely<AuditSchema>;
  sealer: Sealer;
  clock: Clock;
  applianceId: string;
  /** how many days back the first seal of an install reaches (default 31) */
  firstDays?: number;
  /** RFC 3161 timestamps of each seal (a seal waits `pending` while no TSA answers) */
  timestamper?: Timestamper;
}

export interface SealResult {
  /** days sealed by this run, oldest first */
  sealed: string[];
  /** the newest sealed day, if any */
  latest?: string;
}

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayStart = (day: string) => Date.parse(`${day}T00:00:00.000Z`);

/**
 * The daily log seal: for every complete UTC day not sealed yet, the last record written that day
 * (seq and chain hash), chained to the previous day's seal by the SHA-256 of its exact bytes,
 * signed with the sealing key (ECDSA in the HSM). The chain since the previous seal is recomputed
 * first: a trail that does not continue the sealed one is never sealed (AUDIT_TAMPERED).
 */
export class DailySeals {
  constructor(private readonly o: DailySealOptions) {}

  async sealDue(): Promise<SealResult> {
    const today = dayOf(this.o.clock.nowMs());
    const last = await this.o.db
      .selectFrom('audit_seals')
      .selectAll()
      .orderBy('day', 'desc')
      .limit(1)
      .executeTakeFirst();
    let day: string;
    if (last) day = dayOf(dayStart(last.day) + DAY);
    else {
      const first = await this.o.db
        .selectFrom('audit_events')
        .select('at')
        .orderBy('seq', 'asc')
        .limit(1)
        .executeTakeFirst();
      if (!first) return { sealed: [] };
      day = dayOf(Math.max(Number(first.at), dayStart(today) - (this.o.firstDays ?? 31) * DAY));
    }
    const sealed: string[] = [];
    let prev = last
      ? { day: last.day, seq: Number(last.last_seq), hash: last.last_hash, sha256: last.sha256 }
      : undefined;
    for (; day < today; day = dayOf(dayStart(day) + DAY)) {
      prev = await this.sealDay(day, prev);
      sealed.push(day);
    }
    return { sealed, ...(sealed.length ? { latest: sealed.at(-1)! } : last ? { latest: last.day } : {}) };
  }

  private async sealDay(
    day: string,
    prev: { day: string; seq: number; hash: string; sha256: string } | undefined,
  ): Promise<{ day: string; seq: number; hash: string; sha256: string }> {
    const end = dayStart(day) + DAY;
    const lastRow = await this.o.db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('at', '<', end)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const lastSeq = lastRow ? Number(lastRow.seq) : (prev?.seq ?? 0);
    const lastHash = lastRow ? lastRow.hash : (prev?.hash ?? GENESIS_HASH);
    // the chain from the previous seal (or the oldest record kept) to this day's last record
    const from = prev?.seq ?? 0;
    let h = prev?.hash;
    let expected = from + 1;
    for await (const r of iterateRecords(this.o.db, from, 5000, lastSeq)) {
      if (h === undefined) {
        // no previous seal: the oldest record kept (pruning may have removed older ones) starts the check
        const pruned = await this.o.db
          .selectFrom('audit_checkpoints')
          .select(['seq', 'hash'])
          .where('kind', '=', 'pruned')
          .where('seq', '=', r.seq - 1)
          .executeTakeFirst();
        h = r.seq === 1 ? GENESIS_HASH : pruned?.hash;
        if (h === undefined)
          throw tampered(day, `record ${r.seq - 1}, before the oldest kept, is neither pruned nor present`);
        expected = r.seq;
      }
      if (r.seq !== expected) throw tampered(day, `record ${expected} is missing`);
      h = chainHash(h, canonicalEncoding(r));
      if (h !== r.hash) throw tampered(day, `record ${r.seq} does not match its hash`);
      expected += 1;
    }
    if (lastSeq > from && h !== lastHash) throw tampered(day, `the chain does not reach record ${lastSeq}`);
    const records = lastSeq - from;
    const body = Buffer.from(
      `${JSON.stringify(
        {
          type: SEAL_TYPE,
          version: SEAL_VERSION,
          applianceId: this.o.applianceId,
          day,
          dayEnd: new Date(end).toISOString(),
          lastSeq,
          lastHash,
          recordsSincePrevious: records,
          previous: prev ? { day: prev.day, sha256: prev.sha256 } : null,
          sealedAt: new Date(this.o.clock.nowMs()).toISOString(),
          certificateSha256: (await this.o.sealer.certificate()).fingerprint,
        },
        null,
        2,
      )}\n`,
    );
    const signature = await this.o.sealer.sign(body);
    const sha256 = crypto.createHash('sha256').update(body).digest('hex');
    const cert = await this.o.sealer.certificate();
    await this.o.db
      .insertInto('audit_seals')
      .values({
        day,
        last_seq: lastSeq,
        last_hash: lastHash,
        body: body.toString('utf8'),
        sha256,
        signature: signature.toString('base64'),
        cert_fingerprint: cert.fingerprint,
        created_at: this.o.clock.nowMs(),
        ts_state: this.o.timestamper?.configured ? 'pending' : 'none',
        ts_token: null,
        ts_at: null,
        ts_attempts: 0,
      })
      .onConflict((oc) => oc.column('day').doNothing())
      .execute();
    // another process may have sealed this day first: continue from what is stored
    const row = await this.o.db.selectFrom('audit_seals').selectAll().where('day', '=', day).executeTakeFirstOrThrow();
    if (row.ts_state === 'pending') await this.tryTimestamp(day, Buffer.from(row.body, 'utf8'));
    return { day, seq: Number(row.last_seq), hash: row.last_hash, sha256: row.sha256 };
  }

  /** One attempt now; a TSA that does not answer leaves the seal pending for the retrier. */
  private async tryTimestamp(day: string, body: Buffer): Promise<void> {
    try {
      await this.granted(day, await this.o.timestamper!.timestamp(body));
    } catch {
      await this.o.db
        .updateTable('audit_seals')
        .set((eb) => ({ ts_attempts: eb('ts_attempts', '+', 1) }))
        .where('day', '=', day)
        .execute();
    }
  }

  private async granted(day: string, t: { response: Buffer; genTime: Date }): Promise<void> {
    await this.o.db
      .updateTable('audit_seals')
      .set({ ts_state: 'granted', ts_token: t.response.toString('base64'), ts_at: t.genTime.getTime() })
      .where('day', '=', day)
      .where('ts_state', '=', 'pending')
      .execute();
  }

  /** The seals waiting for their timestamp, for the retrier (src/seals/retrier.ts). */
  pendingSource(): PendingTimestamps {
    return {
      name: 'audit.seal',
      pending: async (limit) =>
        (
          await this.o.db
            .selectFrom('audit_seals')
            .select(['day', 'body', 'created_at'])
            .where('ts_state', '=', 'pending')
            .orderBy('day', 'asc')
            .limit(limit)
            .execute()
        ).map((r) => ({ id: r.day, data: Buffer.from(r.body, 'utf8'), since: Number(r.created_at) })),
      granted: (id, t) => this.granted(id, t),
    };
  }

  /** Every seal, oldest first: the signed bytes, the signature (base64 DER), the RFC 3161 response (base64 DER) when granted. */
  async list(): Promise<{ day: string; body: string; signature: string; token: string | null }[]> {
    const rows = await this.o.db
      .selectFrom('audit_seals')
      .select(['day', 'body', 'signature', 'ts_state', 'ts_token'])
      .orderBy('day', 'asc')
      .execute();
    return rows.map((r) => ({
      day: r.day,
      body: r.body,
      signature: r.signature,
      token: r.ts_state === 'granted' ? r.ts_token : null,
    }));
  }

  /**
   * Writes every seal in [from, to] (all when not given) into `dir` (created; files never
   * overwritten): `seal-DAY.json` (the signed bytes), `.json.sig` (DER ECDSA), `.json.tsr` (RFC 3161
   * response, when granted), every certificate the sealing key has had, the latest signed
   * checkpoint, and README.txt with the openssl commands.
   */
  async exportTo(
    dir: string,
    certificates: { pem: string; fingerprint: string }[],
    range: { from?: string; to?: string } = {},
  ): Promise<{ dir: string; seals: number; timestamped: number }> {
    let q = this.o.db.selectFrom('audit_seals').selectAll().orderBy('day', 'asc');
    if (range.from) q = q.where('day', '>=', range.from);
    if (range.to) q = q.where('day', '<=', range.to);
    const rows = await q.execute();
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const write = (name: string, data: string | Buffer) =>
      fs.writeFileSync(path.join(dir, name), data, { flag: 'wx', mode: 0o644 });
    let timestamped = 0;
    for (const r of rows) {
      write(`seal-${r.day}.json`, r.body);
      write(`seal-${r.day}.json.sig`, Buffer.from(r.signature, 'base64'));
      if (r.ts_state === 'granted' && r.ts_token) {
        write(`seal-${r.day}.json.tsr`, Buffer.from(r.ts_token, 'base64'));
        timestamped += 1;
      }
    }
    for (const c of certificates) write(`seal-cert-${c.fingerprint.slice(0, 16)}.pem`, c.pem);
    if (certificates[0]) write('seal-cert.pem', certificates[0].pem);
    const cp = await this.o.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('signature', 'is not', null)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (cp) {
      write('checkpoint-latest.json', checkpointEncoding(rowToCheckpoint(cp, this.o.applianceId)));
      write('checkpoint-latest.json.sig', Buffer.from(cp.signature!, 'base64'));
    }
    write(
      'README.txt',
      readme(
        rows.map((r) => r.day),
        timestamped > 0,
        cp !== undefined,
      ),
    );
    return { dir, seals: rows.length, timestamped };
  }
}

function tampered(day: string, why: string): AppError {
  return new AppError('AUDIT_TAMPERED', `the audit trail cannot be sealed for ${day}: ${why}; nothing was sealed`, {
    httpStatus: 500,
    exitCode: 1,
    hint: 'keep the database as evidence and run coffre audit verify',
  });
}

function readme(days: string[], tsr: boolean, checkpoint: boolean): string {
  const d = days.at(-1) ?? 'YYYY-MM-DD';
  return `Coffre daily audit seals (docs/proofs.md in the Coffre repository)

Each seal-DAY.json is signed, byte for byte, by the appliance's sealing key (ECDSA P-256 held in
its HSM); seal-DAY.json.sig is the DER signature. Check them with openssl alone:

  openssl x509 -in seal-cert.pem -noout -subject -issuer -fingerprint -sha256
  openssl x509 -in seal-cert.pem -pubkey -noout > seal-pub.pem
  openssl dgst -sha256 -verify seal-pub.pem -signature seal-${d}.json.sig seal-${d}.json

("Verified OK"; any changed byte gives "Verification failure".) A seal names the certificate it was
made under ("certificateSha256"); seal-cert-<first 16 hex digits>.pem is that certificate.

The seals form a chain: "previous.sha256" of a seal is the SHA-256 of the previous day's file:

  openssl dgst -sha256 seal-PREVIOUS-DAY.json

"lastSeq" and "lastHash" are the last audit record of that UTC day and its chain hash: an audit
export (coffre audit export) recomputes to the same hash (docs/formats.md "Audit chain").
${
  tsr
    ? `
seal-DAY.json.tsr is an RFC 3161 time-stamp response from the organisation's time-stamping
authority over the same bytes; it proves the seal existed at the time it states:

  openssl ts -reply -in seal-${d}.json.tsr -text
  openssl ts -verify -data seal-${d}.json -in seal-${d}.json.tsr -CAfile TSA-CA.pem -untrusted TSA-CERT.pem
`
    : ''
}${
    checkpoint
      ? `
checkpoint-latest.json is the latest audit checkpoint (["coffre-audit-checkpoint/1", appliance,
kind, seq, hash, time]); checkpoint-latest.json.sig its signature by the same key:

  openssl dgst -sha256 -verify seal-pub.pem -signature checkpoint-latest.json.sig checkpoint-latest.json
`
      : ''
  }`;
}
