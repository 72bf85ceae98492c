import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import type { KeyProvider } from '../keys/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { isAppError } from '../shared/errors.js';
import { readHead } from './db/rows.js';
import { writeAnchor } from './anchor.js';
import {
  CHECKPOINT_KEY,
  checkpointEncoding,
  rowToCheckpoint,
  type Checkpoint,
  type CheckpointKind,
} from './checkpoint-format.js';

/** How often the timer looks for a due checkpoint by default (verify allows for it). */
export function checkpointTickMs(intervalMs: number): number {
  return Math.min(5000, Math.max(250, Math.floor(intervalMs / 4)));
}

export interface CheckpointerOptions {
  db: Kysely<AuditSchema>;
  keys: KeyProvider;
  clock: Clock;
  log: Logger;
  applianceId: string;
  /** a checkpoint after this many records… */
  every: number;
  /** …and at least this often while records are written */
  intervalMs: number;
  /** how often the timer looks (default min(5 s, intervalMs / 4)) */
  tickMs?: number;
  /** a checkpoint was written (the syslog forwarder sends it) */
  onCheckpoint?: (c: Checkpoint) => void;
  /** checkpoints cannot be made (HSM down…): once per outage */
  onFailure?: (e: unknown) => void;
  /** the latest checkpoint is also written to this file, outside the database (src/audit/anchor.ts) */
  anchorFile?: string;
  /** also signs each checkpoint's encoding with the sealing key (DER ECDSA), checkable offline */
  sign?: (data: Buffer) => Promise<Buffer>;
}

/**
 * MACs the chain head inside the HSM every `every` records and at least every `intervalMs` while
 * records are written, so HSM calls are amortised (one per checkpoint, never one per record).
 * Several processes may run one: a checkpoint is keyed by (seq, kind) and written at most once.
 * Failures (HSM down) never block the trail: they are logged, reported once through `onFailure`
 * and retried at the next tick.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<Checkpoint | undefined> | null = null;
  private last: { seq: number; at: number } | null = null;
  private failing = false;
  /** a hint arrived while a checkpoint was being made: look again afterwards */
  private again = false;

  constructor(private readonly o: CheckpointerOptions) {}

  start(): void {
    if (this.timer) return;
    const tick = this.o.tickMs ?? checkpointTickMs(this.o.intervalMs);
    this.timer = setInterval(() => void this.maybe().catch(() => undefined), tick);
    this.timer.unref();
  }

  /** A hint from the auditor: records up to `seq` were appended. */
  hint(seq: number): void {
    if (this.last && seq - this.last.seq < this.o.every) return;
    void this.maybe().catch(() => undefined);
  }

  /** Makes a checkpoint when the rules say so; returns it, or undefined. */
  async maybe(): Promise<Checkpoint | undefined> {
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    // claimed before the first await: two hints never both decide a checkpoint is due
    return this.serialised(async () => {
      const head = await readHead(this.o.db);
      if (!head || head.seq === 0) return undefined;
      const last = await this.latestStored();
      const now = this.o.clock.nowMs();
      if (last && head.seq <= last.seq) return undefined;
      const due = !last || head.seq - last.seq >= this.o.every || now - last.at >= this.o.intervalMs;
      return due ? this.make('periodic') : undefined;
    });
  }

  /**
   * MACs the current head now (kinds `periodic`, `stop`, `manual`). Undefined when the trail is
   * empty or this head already has a checkpoint of this kind. Throws KEYS_UNAVAILABLE when the HSM
   * cannot be used.
   */
  async checkpoint(kind: Exclude<CheckpointKind, 'pruned'> = 'manual'): Promise<Checkpoint | undefined> {
    while (this.busy) await this.busy.catch(() => undefined);
    return this.serialised(() => this.make(kind));
  }

  private async serialised(fn: () => Promise<Checkpoint | undefined>): Promise<Checkpoint | undefined> {
    this.busy = fn();
    try {
      return await this.busy;
    } finally {
      this.busy = null;
      if (this.again && this.timer) {
        this.again = false;
        void this.maybe().catch(() => undefined);
      }
    }
  }

  /** Stops the timer and MACs the head if records were written since the last checkpoint. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.busy) await this.busy.catch(() => undefined);
    const head = await readHead(this.o.db).catch(() => undefined);
    if (!head || head.seq === 0) return;
    const last = await this.latestStored().catch(() => null);
    if (last && last.seq >= head.seq) return;
    await this.checkpoint('stop').catch((e: unknown) => this.o.log.error({ err: e }, 'final audit checkpoint failed'));
  }

  /** The latest checkpoints, newest first (what leaves the box with each backup). */
  async latest(n = 10): Promise<Checkpoint[]> {
    const rows = await this.o.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .orderBy('at', 'desc')
      .limit(n)
      .execute();
    return rows.map((r) => rowToCheckpoint(r, this.o.applianceId));
  }

  private async latestStored(): Promise<{ seq: number; at: number } | null> {
    if (this.last) {
      // another process may have made a newer one
      const r = await this.o.db
        .selectFrom('audit_checkpoints')
        .select(['seq', 'at'])
        .where('seq', '>', this.last.seq)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (r) this.last = { seq: Number(r.seq), at: Number(r.at) };
      return this.last;
    }
    const r = await this.o.db
      .selectFrom('audit_checkpoints')
      .select(['seq', 'at'])
      .orderBy('seq', 'desc')
      .orderBy('at', 'desc')
      .limit(1)
      .executeTakeFirst();
    this.last = r ? { seq: Number(r.seq), at: Number(r.at) } : null;
    return this.last;
  }

  private async make(kind: Exclude<CheckpointKind, 'pruned'>): Promise<Checkpoint | undefined> {
    const head = await readHead(this.o.db);
    if (!head || head.seq === 0) return undefined;
    const base = { applianceId: this.o.applianceId, kind, seq: head.seq, hash: head.hash, at: this.o.clock.nowMs() };
    let mac: Buffer;
    try {
      mac = await this.o.keys.mac(CHECKPOINT_KEY, checkpointEncoding(base));
    } catch (e) {
      this.o.log.error(
        { code: isAppError(e) ? e.code : undefined, err: isAppError(e) ? undefined : e },
        'audit checkpoint could not be MACed in the HSM; retrying at the next tick',
      );
      if (!this.failing) {
        this.failing = true;
        this.o.onFailure?.(e);
      }
      throw e;
    }
    this.failing = false;
    let signature: string | null = null;
    if (this.o.sign) {
      // the MAC is the checkpoint; a signature that cannot be made now only leaves this one unsigned
      signature = await this.o.sign(checkpointEncoding(base)).then(
        (b) => b.toString('base64'),
        (e: unknown) => {
          this.o.log.warn(
            { code: isAppError(e) ? e.code : undefined },
            'audit checkpoint could not be signed with the sealing key',
          );
          return null;
        },
      );
    }
    const c: Checkpoint = {
      ...base,
      keyName: CHECKPOINT_KEY,
      mac: mac.toString('hex'),
      ...(signature ? { signature } : {}),
    };
    const r = await this.o.db
      .insertInto('audit_checkpoints')
      .values({ seq: c.seq, kind: c.kind, at: c.at, hash: c.hash, key_name: c.keyName, mac: c.mac, signature })
      .onConflict((oc) => oc.columns(['seq', 'kind']).doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return undefined;
    if (!this.last || c.seq >= this.last.seq) this.last = { seq: c.seq, at: c.at };
    if (this.o.anchorFile) {
      try {
        writeAnchor(this.o.anchorFile, c);
      } catch (e) {
        this.o.log.error({ err: e }, 'the audit anchor file could not be written; the checkpoint is in the database');
      }
    }
    this.o.log.debug({ seq: c.seq, kind }, 'audit checkpoint');
    this.o.onCheckpoint?.(c);
    return c;
  }
}
