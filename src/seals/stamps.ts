import crypto from 'node:crypto';
import type { SealsDb, SharedDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { PendingTimestamps, Timestamper } from './types.js';

/** The RFC 3161 timestamp of a proof, as handed out beside it. */
export interface ProofTimestamp {
  state: 'none' | 'pending' | 'granted';
  /** base64 DER TimeStampResp over the proof's exact signed bytes */
  token?: string;
  genTime?: string;
}

export interface ProofStampsOptions {
  db: SealsDb;
  clock: Clock;
  /** none, or not configured: proofs are not timestamped (state `none`) */
  timestamper?: Timestamper;
}

/**
 * RFC 3161 timestamps of the signed proofs that have no table of their own for it: destruction
 * certificates and integrity reports (docs/proofs.md "Timestamps"). A proof is queued `pending`
 * (inside its own transaction when it has one), asked for at once when no transaction holds it, and
 * retried with the seals by the TimestampRetrier while no TSA answers.
 */
export class ProofStamps {
  constructor(private readonly o: ProofStampsOptions) {}

  get configured(): boolean {
    return this.o.timestamper?.configured ?? false;
  }

  /** Queues `body` (inside the caller's transaction when `shared` is given); the TSA is asked later. */
  async queue(kind: string, subject: string, body: string, shared?: SharedDb): Promise<void> {
    if (!this.configured) return;
    const db: SealsDb = shared ?? this.o.db;
    await db
      .insertInto('seal_timestamps')
      .values({
        id: crypto.randomUUID(),
        kind,
        subject,
        body,
        sha256: crypto.createHash('sha256').update(body, 'utf8').digest('hex'),
        created_at: this.o.clock.nowMs(),
        ts_state: 'pending',
        ts_token: null,
        ts_at: null,
        ts_attempts: 0,
      })
      .execute();
  }

  /** Queues `body` and asks the TSA once now; returns what the proof carries. */
  async stamp(kind: string, subject: string, body: string): Promise<ProofTimestamp> {
    if (!this.configured) return { state: 'none' };
    await this.queue(kind, subject, body);
    await this.attempt(kind, subject);
    return this.of(kind, subject);
  }

  /** Asks the TSA now for the pending timestamps of a proof (a TSA that does not answer leaves them pending). */
  async attempt(kind: string, subject: string): Promise<void> {
    const rows = await this.o.db
      .selectFrom('seal_timestamps')
      .select(['id', 'body'])
      .where('kind', '=', kind)
      .where('subject', '=', subject)
      .where('ts_state', '=', 'pending')
      .execute();
    for (const r of rows) {
      try {
        await this.granted(r.id, await this.o.timestamper!.timestamp(Buffer.from(r.body, 'utf8')));
      } catch {
        await this.o.db
          .updateTable('seal_timestamps')
          .set((eb) => ({ ts_attempts: eb('ts_attempts', '+', 1) }))
          .where('id', '=', r.id)
          .execute();
      }
    }
  }

  /** The timestamp of a proof: granted (with its token), pending, or none. */
  async of(kind: string, subject: string): Promise<ProofTimestamp> {
    const rows = await this.o.db
      .selectFrom('seal_timestamps')
      .select(['ts_state', 'ts_token', 'ts_at'])
      .where('kind', '=', kind)
      .where('subject', '=', subject)
      .orderBy('created_at', 'desc')
      .execute();
    const g = rows.find((r) => r.ts_state === 'granted' && r.ts_token);
    if (g) return { state: 'granted', token: g.ts_token!, genTime: new Date(Number(g.ts_at)).toISOString() };
    return { state: rows.length ? 'pending' : 'none' };
  }

  /** The proofs waiting for their timestamp, for the retrier (src/seals/retrier.ts). */
  pendingSource(): PendingTimestamps {
    return {
      name: 'proof',
      pending: async (limit) =>
        (
          await this.o.db
            .selectFrom('seal_timestamps')
            .select(['id', 'body', 'created_at'])
            .where('ts_state', '=', 'pending')
            .orderBy('created_at', 'asc')
            .limit(limit)
            .execute()
        ).map((r) => ({ id: r.id, data: Buffer.from(r.body, 'utf8'), since: Number(r.created_at) })),
      granted: (id, t) => this.granted(id, t),
    };
  }

  private async granted(id: string, t: { response: Buffer; genTime: Date }): Promise<void> {
    await this.o.db
      .updateTable('seal_timestamps')
      .set({ ts_state: 'granted', ts_token: t.response.toString('base64'), ts_at: t.genTime.getTime() })
      .where('id', '=', id)
      .where('ts_state', '=', 'pending')
      .execute();
  }
}
