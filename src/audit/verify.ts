import type { Kysely } from 'kysely';
import type { AuditSchema } from '../db/index.js';
import type { KeyProvider } from '../keys/types.js';
import { canonicalEncoding, chainHash, GENESIS_HASH, type AuditRecord } from './canonical.js';
import { checkpointEncoding, rowToCheckpoint, type Checkpoint } from './checkpoint-format.js';
import { iterateRecords, readHead } from './db/rows.js';

export type VerifyProblemCode =
  /** a record is missing (deleted) */
  | 'SEQ_GAP'
  /** a record's content or hash does not match the chain (modified, inserted, reordered) */
  | 'HASH_MISMATCH'
  /** records past the head row (appended without the chain) or a head that does not match the last record */
  | 'HEAD_MISMATCH'
  /** the trail ends before the head, a checkpoint or an exported checkpoint says it did */
  | 'TRUNCATED'
  /** the chain is self-consistent but differs from a MACed checkpoint: it was recomputed after a change */
  | 'CHECKPOINT_MISMATCH'
  /** a checkpoint's MAC does not verify in the HSM: forged or altered */
  | 'CHECKPOINT_MAC_INVALID'
  /** an exported checkpoint of another appliance */
  | 'CHECKPOINT_FOREIGN'
  /** the per-target index (audit_targets) disagrees with the chained records: a row deleted, altered or added */
  | 'INDEX_MISMATCH'
  /** the anchor file (the latest checkpoint kept outside the database) exists but is not a checkpoint */
  | 'ANCHOR_UNREADABLE'
  /** a stretch of records went without the checkpoint the cadence required: checkpoints deleted, or the chain rewritten past one */
  | 'CHECKPOINT_OVERDUE';

/**
 * The checkpoint cadence the appliance keeps (audit.checkpointEvery, audit.checkpointIntervalMs):
 * a checkpoint follows at the latest `every` records, or `intervalMs` of activity, after the previous
 * one. `tickMs` is how often the checkpointer looks; `graceMs` allows for a slow HSM and a busy host.
 */
export interface CheckpointCadence {
  every: number;
  intervalMs: number;
  tickMs: number;
  graceMs: number;
}

export interface VerifyOptions {
  db: Kysely<AuditSchema>;
  applianceId: string;
  /** when given, every checkpoint's MAC is checked inside the HSM */
  keys?: KeyProvider;
  /** checkpoints exported earlier (SIEM, backups, the anchor file): detect a cut-off tail */
  anchors?: readonly Checkpoint[];
  /** the anchor file exists but holds no checkpoint (replaced or damaged) */
  anchorUnreadable?: boolean;
  /** when given, every stretch between checkpoints (and the tail after the last) is held to it */
  cadence?: CheckpointCadence;
  pageSize?: number;
}

export interface VerifyReport {
  ok: boolean;
  /** records checked */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** records up to this seq were pruned under a MACed "pruned" checkpoint (0: none) */
  prunedUpTo: number;
  checkpoints: { total: number; matched: number; macChecked: boolean };
  anchors: { total: number; matched: number };
  /** the first sequence number that is missing, altered, forged or out of place */
  firstBadSeq?: number;
  problem?: { code: VerifyProblemCode; message: string };
}

interface Expectation {
  seq: number;
  hash: string;
  at: number;
  what: string;
  anchor: boolean;
  macOk: boolean | undefined;
}

/**
 * Recomputes the whole chain and checks it against the head row, every stored checkpoint (MACs in
 * the HSM when `keys` is given) and every exported checkpoint given as anchor. Stops at the first
 * problem and names the first bad sequence number. Reads page by page: constant memory.
 */
export async function verifyTrail(o: VerifyOptions): Promise<VerifyReport> {
  const { db } = o;
  const head0 = await readHead(db);
  const stored = (await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute()).map((r) =>
    rowToCheckpoint(r, o.applianceId),
  );
  const anchors = o.anchors ?? [];
  const report: VerifyReport = {
    ok: true,
    records: 0,
    firstSeq: null,
    lastSeq: null,
    prunedUpTo: 0,
    checkpoints: { total: stored.length, matched: 0, macChecked: o.keys !== undefined },
    anchors: { total: anchors.length, matched: 0 },
  };
  const fail = (seq: number, code: VerifyProblemCode, message: string): VerifyReport => {
    report.ok = false;
    report.firstBadSeq = seq;
    report.problem = { code, message };
    return report;
  };
  if (!head0) return fail(1, 'HEAD_MISMATCH', 'the chain head row is missing');
  if (o.anchorUnreadable)
    return fail(
      head0.seq,
      'ANCHOR_UNREADABLE',
      'the audit anchor file holds no checkpoint: it was replaced or damaged',
    );

  for (const a of anchors) {
    if (a.applianceId !== o.applianceId)
      return fail(
        a.seq,
        'CHECKPOINT_FOREIGN',
        `exported checkpoint at seq ${a.seq} belongs to appliance ${a.applianceId}, not ${o.applianceId}`,
      );
  }
  const macOk = async (c: Checkpoint): Promise<boolean | undefined> =>
    o.keys ? o.keys.verifyMac(c.keyName, checkpointEncoding(c), Buffer.from(c.mac, 'hex')) : undefined;

  const expectations: Expectation[] = [];
  // MACs are checked in the HSM several at a time (its session pool), one call per checkpoint
  const all = [...stored.map((c) => ({ c, anchor: false })), ...anchors.map((c) => ({ c, anchor: true }))];
  for (let i = 0; i < all.length; i += 8) {
    const part = all.slice(i, i + 8);
    const oks = await Promise.all(part.map((x) => macOk(x.c)));
    part.forEach(({ c, anchor }, j) =>
      expectations.push({
        seq: c.seq,
        hash: c.hash,
        at: c.at,
        what: `${anchor ? 'exported ' : ''}${c.kind} checkpoint at seq ${c.seq}`,
        anchor,
        macOk: oks[j],
      }),
    );
  }
  expectations.sort((a, b) => a.seq - b.seq);

  // the base: the latest "pruned" checkpoint whose MAC holds (or is not checked)
  let prev = { seq: 0, hash: GENESIS_HASH };
  for (const c of stored) {
    if (c.kind !== 'pruned') continue;
    const e = expectations.find((x) => !x.anchor && x.seq === c.seq && x.hash === c.hash);
    if (e?.macOk === false) continue; // reported below when reached
    if (c.seq > prev.seq) prev = { seq: c.seq, hash: c.hash };
  }
  const cadence = o.cadence ? new CadenceCheck(o.cadence) : undefined;
  report.prunedUpTo = prev.seq;
  let pending = expectations.filter((e) => e.seq > prev.seq);
  for (const e of expectations) {
    if (e.seq <= prev.seq && e.macOk === false)
      return fail(
        e.seq,
        'CHECKPOINT_MAC_INVALID',
        `the MAC of the ${e.what} does not verify: it was forged or altered`,
      );
    if (e.seq === prev.seq && e.hash !== prev.hash)
      return fail(e.seq, 'CHECKPOINT_MISMATCH', `the ${e.what} disagrees with the pruning checkpoint`);
  }
  let lastMatched = prev.seq;

  const settle = (seq: number, hash: string): VerifyReport | undefined => {
    while (pending.length && pending[0]!.seq === seq) {
      const e = pending.shift()!;
      if (e.macOk === false)
        return fail(
          seq,
          'CHECKPOINT_MAC_INVALID',
          `the MAC of the ${e.what} does not verify: it was forged or altered`,
        );
      if (e.hash !== hash) {
        return fail(
          lastMatched + 1,
          'CHECKPOINT_MISMATCH',
          `the chain up to seq ${seq} differs from the ${e.what}: records ${lastMatched + 1}–${seq} were rewritten and the chain recomputed`,
        );
      }
      if (e.anchor) report.anchors.matched += 1;
      else report.checkpoints.matched += 1;
      const late = cadence?.checkpoint(e.at);
      if (late) return fail(late.seq, 'CHECKPOINT_OVERDUE', late.message);
    }
    lastMatched = seq;
    return undefined;
  };
  // expectations at the base itself
  const base = settle(prev.seq, prev.hash);
  if (base) return base;

  // the per-target index, read alongside in pages: each record's index rows must be exactly its
  // chained targets (the auditor's "who touched this document" query reads the index)
  const pageSize = o.pageSize ?? 5000;
  const index = new Map<number, string[]>();
  let indexedUpTo = prev.seq;
  const indexOf = async (seq: number): Promise<string[]> => {
    if (seq > indexedUpTo) {
      index.clear();
      const to = Math.max(seq, indexedUpTo + pageSize);
      const rows = await db
        .selectFrom('audit_targets')
        .select(['seq', 'kind', 'id'])
        .where('seq', '>', indexedUpTo)
        .where('seq', '<=', to)
        .execute();
      for (const t of rows) {
        const k = Number(t.seq);
        index.set(k, [...(index.get(k) ?? []), `${t.kind}\u0000${t.id}`]);
      }
      indexedUpTo = to;
    }
    return (index.get(seq) ?? []).sort();
  };
  const pruned = prev.seq;

  for await (const r of iterateRecords(db, prev.seq, pageSize, head0.seq)) {
    const expected = prev.seq + 1;
    if (r.seq !== expected)
      return fail(expected, 'SEQ_GAP', `record ${expected} is missing (the next record is ${r.seq})`);
    const h = chainHash(prev.hash, canonicalEncoding(r));
    if (h !== r.hash)
      return fail(
        r.seq,
        'HASH_MISMATCH',
        `record ${r.seq} does not match its hash: it was modified, inserted or moved`,
      );
    const chained = r.targets.map(([k, id]) => `${k}\u0000${id}`).sort();
    const indexed = await indexOf(r.seq);
    if (chained.length !== indexed.length || chained.some((x, i) => x !== indexed[i])) {
      return fail(
        r.seq,
        'INDEX_MISMATCH',
        `the target index of record ${r.seq} does not match the record (${indexed.length} index row(s) for ${chained.length} target(s)): an index row was deleted, altered or added`,
      );
    }
    cadence?.record(r);
    report.records += 1;
    report.firstSeq ??= r.seq;
    report.lastSeq = r.seq;
    prev = { seq: r.seq, hash: r.hash };
    if (pending.length && pending[0]!.seq === r.seq) {
      const bad = settle(r.seq, r.hash);
      if (bad) return bad;
    }
  }

  const last = prev;
  if (head0.seq > last.seq)
    return fail(
      last.seq + 1,
      'TRUNCATED',
      `the trail ends at seq ${last.seq} but its head says ${head0.seq}: records ${last.seq + 1}–${head0.seq} were removed`,
    );
  if (head0.seq === last.seq && head0.hash !== last.hash)
    return fail(last.seq, 'HEAD_MISMATCH', `the head's hash does not match record ${last.seq}`);
  pending = pending.filter((e) => e.seq > last.seq);
  if (pending.length) {
    const e = pending[0]!;
    if (e.macOk === false)
      return fail(
        e.seq,
        'CHECKPOINT_MAC_INVALID',
        `the MAC of the ${e.what} does not verify: it was forged or altered`,
      );
    return fail(
      last.seq + 1,
      'TRUNCATED',
      `the trail ends at seq ${last.seq} but the ${e.what} exists: the tail was cut off`,
    );
  }
  const lateTail = cadence?.tail();
  if (lateTail) return fail(lateTail.seq, 'CHECKPOINT_OVERDUE', lateTail.message);
  // index rows of no chained record (pruned, or beyond the trail)
  const stray = await db
    .selectFrom('audit_targets')
    .select('seq')
    .where((eb) => eb.or([eb('seq', '<=', pruned), eb('seq', '>', last.seq)]))
    .where('seq', '<=', head0.seq)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  if (stray)
    return fail(
      Number(stray.seq),
      'INDEX_MISMATCH',
      `the target index has a row for record ${stray.seq}, which the chain does not hold`,
    );
  // records beyond the head: appended outside the chain. A writer moves the head in the same
  // transaction as its records, so reading the record first and the head second never mistakes a
  // record committed meanwhile for a forged one.
  const beyond = await db
    .selectFrom('audit_events')
    .select('seq')
    .where('seq', '>', head0.seq)
    .orderBy('seq', 'asc')
    .limit(1)
    .executeTakeFirst();
  if (beyond) {
    const head1 = (await readHead(db)) ?? head0;
    const b = Number(beyond.seq);
    if (b > head1.seq)
      return fail(
        Math.min(b, head1.seq + 1),
        'HEAD_MISMATCH',
        `record ${b} lies beyond the chain head (${head1.seq}): it was inserted outside the trail`,
      );
  }
  return report;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Follows the stretches of records between checkpoints. In each, a checkpoint was due `every`
 * records after it opened (the checkpointer is told at once), or `intervalMs` after the previous
 * checkpoint once a record is waiting (it looks every `tickMs`); a record written after that moment
 * in the same stretch shows a checkpoint that is missing. A stretch closed by a checkpoint and holding
 * a chained `audit.checkpoint` failure (the HSM was unavailable) is excused: the closing checkpoint
 * vouches for it. The tail after the last checkpoint never is: nothing vouches for its records.
 */
class CadenceCheck {
  private openedAt: number | undefined;
  private first: AuditRecord | undefined;
  private count = 0;
  private deadline = Infinity;
  private dueBy = '';
  private excused = false;
  private late: { seq: number; at: number; why: string } | undefined;
  private last: AuditRecord | undefined;

  constructor(private readonly c: CheckpointCadence) {}

  record(r: AuditRecord): void {
    this.last = r;
    if (this.count === 0) {
      this.first = r;
      const t = Math.max((this.openedAt ?? -Infinity) + this.c.intervalMs, r.at) + this.c.tickMs + this.c.graceMs;
      this.deadline = t;
      this.dueBy = `${this.c.intervalMs} ms of activity`;
    }
    this.count += 1;
    if (this.count === this.c.every && r.at + this.c.graceMs < this.deadline) {
      this.deadline = r.at + this.c.graceMs;
      this.dueBy = `${this.c.every} records (seq ${r.seq})`;
    }
    if (r.action === 'audit.checkpoint' && r.outcome === 'failure') this.excused = true;
    if (this.late) return;
    if (r.at > this.deadline)
      this.late = {
        seq: r.seq,
        at: r.at,
        why: `one was due after ${this.dueBy}, by ${iso(this.deadline)}, yet record ${r.seq} was written at ${iso(r.at)}`,
      };
    // records of one transaction share a time: past twice the count, the dates no longer matter
    else if (this.count > 2 * this.c.every)
      this.late = {
        seq: r.seq,
        at: r.at,
        why: `record ${r.seq} is more than twice checkpointEvery (${this.c.every}) records after the last checkpoint`,
      };
  }

  /** A checkpoint (verified) at the current record: closes the stretch. */
  checkpoint(at: number): { seq: number; message: string } | undefined {
    const bad = this.late && !this.excused ? this.problem('before the checkpoint that closes it') : undefined;
    this.openedAt = this.count === 0 && this.openedAt !== undefined ? Math.max(this.openedAt, at) : at;
    this.first = undefined;
    this.count = 0;
    this.deadline = Infinity;
    this.excused = false;
    this.late = undefined;
    return bad;
  }

  /** The records after the last checkpoint. */
  tail(): { seq: number; message: string } | undefined {
    return this.late ? this.problem('and no checkpoint follows') : undefined;
  }

  private problem(end: string): { seq: number; message: string } {
    const first = this.first!;
    const late = this.late!;
    const last = this.last!;
    return {
      seq: late.seq,
      message:
        `records ${first.seq}–${last.seq} (${this.count} record(s), ${iso(first.at)} to ${iso(last.at)}) went without a checkpoint ${end}: ` +
        `${late.why}; checkpoints were deleted or the chain was rewritten from seq ${first.seq} on`,
    };
  }
}
