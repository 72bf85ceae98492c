import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKeyProvider, type AdminKeyProvider } from '../../src/keys/registry.js';
import {
  Checkpointer,
  CHECKPOINT_KEY,
  exportCheckpoint,
  parseExportedCheckpoint,
  pruneTrail,
  verifyTrail,
  type Checkpoint,
} from '../../src/audit/index.js';
import { canonicalEncoding, chainHash, GENESIS_HASH } from '../../src/audit/canonical.js';
import { rowToRecord } from '../../src/audit/db/rows.js';
import { openDatabase } from '../../src/db/index.js';
import { createTestToken } from '../support/softhsm.js';
import { ev, openTrail, rmrf, silentLog, tamper, type TestTrail } from './support.js';

const APPLIANCE = 'a1b2c3d4-0000-4000-8000-000000000003';
let hsm: AdminKeyProvider;
let t: TestTrail | undefined;
let cp: Checkpointer | undefined;
beforeAll(async () => {
  hsm = await createKeyProvider(createTestToken().config(), { createKek: true });
});
afterAll(async () => {
  await hsm.close();
});
afterEach(async () => {
  await cp?.stop().catch(() => undefined);
  if (t) {
    await t.close().catch(() => undefined);
    rmrf(t.dir);
  }
  t = cp = undefined;
});

async function setup(every = 100, intervalMs = 60_000, keys: AdminKeyProvider = hsm, onFailure?: (e: unknown) => void) {
  t = await openTrail();
  cp = new Checkpointer({
    db: t.h.db,
    keys,
    clock: t.clock,
    log: silentLog(),
    applianceId: APPLIANCE,
    every,
    intervalMs,
    ...(onFailure ? { onFailure } : {}),
  });
  t.auditor.onAppended((seq) => cp!.hint(seq));
  return { t, cp };
}
const write = async (t: TestTrail, from: number, to: number) => {
  await Promise.all(Array.from({ length: to - from + 1 }, (_, i) => t.auditor.recordNow(ev(from + i))));
  await new Promise((r) => setTimeout(r, 20));
};
const stored = async (t: TestTrail) =>
  (await t.h.db.selectFrom('audit_checkpoints').select(['seq', 'kind']).orderBy('seq').execute()).map((r) => [
    Number(r.seq),
    r.kind,
  ]);
async function verifyFile(file: string, anchors: Checkpoint[] = []) {
  const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 5000 });
  try {
    return await verifyTrail({ db: h.db, applianceId: APPLIANCE, keys: hsm, anchors });
  } finally {
    await h.close();
  }
}

describe('HSM checkpoints', () => {
  it('are made every N records and at least once per interval while active, never when idle', async () => {
    const { t, cp } = await setup(100, 60_000);
    await write(t, 1, 1);
    await cp.maybe(); // the auditor's hint may already have made it: look at what is stored
    expect(await stored(t)).toEqual([[1, 'periodic']]); // first record ever
    await write(t, 2, 99);
    expect(await cp.maybe()).toBeUndefined(); // 98 records, 0 s
    await write(t, 100, 101);
    await cp.maybe();
    expect(await stored(t)).toEqual([
      [1, 'periodic'],
      [101, 'periodic'],
    ]);
    await write(t, 102, 105);
    t.clock.advance(59_000);
    expect(await cp.maybe()).toBeUndefined();
    t.clock.advance(1_000);
    expect(await cp.maybe()).toMatchObject({ seq: 105 });
    t.clock.advance(10 * 60_000);
    expect(await cp.maybe()).toBeUndefined(); // idle: nothing new to cover
    await write(t, 106, 106);
    await cp.stop();
    expect((await stored(t)).at(-1)).toEqual([106, 'stop']);
    // verify checks every MAC inside the HSM
    const r = await verifyTrail({ db: t.h.db, applianceId: APPLIANCE, keys: hsm });
    expect(r).toMatchObject({ ok: true, records: 106, checkpoints: { total: 4, matched: 4, macChecked: true } });
  });

  it('amortise HSM calls: one MAC per checkpoint, not per record', async () => {
    const { t, cp } = await setup(1000, 60_000);
    const before = hsm.health().operations;
    for (let i = 0; i < 5; i++) await write(t, i * 1000 + 1, (i + 1) * 1000);
    for (let i = 0; i < 3; i++) await cp.maybe(); // settle what the hints started
    const macs = hsm.health().operations - before;
    const made = (await stored(t)).length;
    expect(macs).toBe(made);
    expect(made).toBeGreaterThanOrEqual(3); // the first record, then every 1,000 (hints may coalesce under load)
    expect(made).toBeLessThanOrEqual(6);
    expect((await stored(t)).at(-1)![0]).toBeGreaterThanOrEqual(4000);
  });

  it('a forged or altered checkpoint is detected by its MAC', async () => {
    const { t, cp } = await setup(10);
    await write(t, 1, 30);
    await cp.checkpoint('manual');
    await t.close();
    tamper(t.file, (db) => db.prepare(`UPDATE audit_checkpoints SET at = at + 1 WHERE kind = 'manual'`).run());
    expect(await verifyFile(t.file)).toMatchObject({
      ok: false,
      firstBadSeq: 30,
      problem: { code: 'CHECKPOINT_MAC_INVALID' },
    });
  });

  it('a rewritten and re-chained trail disagrees with its checkpoints', async () => {
    const { t, cp } = await setup(10);
    for (let i = 0; i < 5; i++) {
      await write(t, i * 10 + 1, i * 10 + 10);
      await cp.checkpoint('manual');
    }
    await t.close();
    // the intruder edits record 23 and recomputes every hash after it, and the head
    tamper(t.file, (db) => {
      db.prepare(`UPDATE audit_events SET actor = 'user:nobody' WHERE seq = 23`).run();
      const rows = db.prepare('SELECT * FROM audit_events ORDER BY seq').all() as Parameters<typeof rowToRecord>[0][];
      let prev = GENESIS_HASH;
      const set = db.prepare('UPDATE audit_events SET hash = ? WHERE seq = ?');
      for (const row of rows) {
        prev = chainHash(prev, canonicalEncoding(rowToRecord(row)));
        set.run(prev, row.seq);
      }
      db.prepare('UPDATE audit_head SET hash = ?').run(prev);
    });
    const r = await verifyFile(t.file);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 21, problem: { code: 'CHECKPOINT_MISMATCH' } });
    expect(r.problem!.message).toContain('21–30');
  });

  it('a cut-off tail (checkpoints and head fixed too) is caught by a checkpoint that left the box', async () => {
    const { t, cp } = await setup(10);
    await write(t, 1, 40);
    await cp.checkpoint('manual');
    // what syslog and backups carry, as JSON
    const exported = JSON.parse(JSON.stringify((await cp.latest(3)).map(exportCheckpoint))) as unknown[];
    const anchors = exported.map(parseExportedCheckpoint).filter((c): c is Checkpoint => c !== undefined);
    expect(anchors.length).toBeGreaterThan(0);
    await t.close();
    expect(await verifyFile(t.file, anchors)).toMatchObject({ ok: true, anchors: { matched: anchors.length } });
    tamper(t.file, (db) => {
      db.prepare('DELETE FROM audit_events WHERE seq > 35').run();
      db.prepare('DELETE FROM audit_checkpoints WHERE seq > 35').run();
      const last = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        hash: string;
      };
      db.prepare('UPDATE audit_head SET seq = ?, hash = ?').run(last.seq, last.hash);
    });
    expect(await verifyFile(t.file)).toMatchObject({ ok: true }); // the database alone cannot tell
    expect(await verifyFile(t.file, anchors)).toMatchObject({
      ok: false,
      firstBadSeq: 36,
      problem: { code: 'TRUNCATED' },
    });
    // a forged "exported" checkpoint does not pass either
    const forged = { ...anchors[0]!, seq: 30, hash: 'ab'.repeat(32) };
    expect(await verifyFile(t.file, [forged])).toMatchObject({
      ok: false,
      firstBadSeq: 30,
      problem: { code: 'CHECKPOINT_MAC_INVALID' },
    });
    expect(await verifyFile(t.file, [{ ...anchors[0]!, applianceId: 'another-appliance' }])).toMatchObject({
      ok: false,
      problem: { code: 'CHECKPOINT_FOREIGN' },
    });
  });

  it('HSM down: records are still written, the failure is reported once, checkpoints resume', async () => {
    const down = await createKeyProvider(createTestToken().config(), { createKek: true });
    await down.close();
    const failures: unknown[] = [];
    const { t, cp } = await setup(5, 60_000, down, (e) => failures.push(e));
    await write(t, 1, 20);
    await expect(cp.checkpoint('manual')).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });
    await cp.maybe().catch(() => undefined);
    expect(failures).toHaveLength(1);
    expect(Number((await t.h.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow()).seq)).toBe(20);
    expect(await stored(t)).toEqual([]);
    const again = new Checkpointer({
      db: t.h.db,
      keys: hsm,
      clock: t.clock,
      log: silentLog(),
      applianceId: APPLIANCE,
      every: 5,
      intervalMs: 60_000,
    });
    expect(await again.maybe()).toMatchObject({ seq: 20, keyName: CHECKPOINT_KEY });
  });
});

describe('retention', () => {
  it('prunes records older than the retention under a MACed "pruned" checkpoint; the rest still verifies', async () => {
    const { t, cp } = await setup(50);
    const day = 86_400_000;
    for (let d = 0; d < 10; d++) {
      await write(t, d * 20 + 1, d * 20 + 20);
      await cp.maybe();
      t.clock.advance(day);
    }
    // retention 5 days: the first 5 days (seq 1–100) go
    const r = await pruneTrail({
      db: t.h.db,
      keys: hsm,
      clock: t.clock,
      auditor: t.auditor,
      applianceId: APPLIANCE,
      retentionDays: 5,
      actor: 'job:audit.prune',
    });
    expect(r).toMatchObject({ prunedUpTo: 100, deleted: 100, checkpoint: { kind: 'pruned', seq: 100 } });
    expect(
      Number(
        (
          await t.h.db
            .selectFrom('audit_events')
            .select((eb) => eb.fn.min('seq').as('m'))
            .executeTakeFirstOrThrow()
        ).m,
      ),
    ).toBe(101);
    expect(await t.h.db.selectFrom('audit_targets').select('seq').where('seq', '<=', 100).execute()).toHaveLength(0);
    const last = await t.h.db.selectFrom('audit_events').selectAll().orderBy('seq', 'desc').executeTakeFirstOrThrow();
    expect(last).toMatchObject({ action: 'audit.prune', actor: 'job:audit.prune' });
    expect(JSON.parse(last.targets!)).toEqual([
      ['retentionDays', '5'],
      ['upToSeq', '100'],
    ]);
    expect(await verifyTrail({ db: t.h.db, applianceId: APPLIANCE, keys: hsm })).toMatchObject({
      ok: true,
      prunedUpTo: 100,
      firstSeq: 101,
      lastSeq: 201,
    });
    // nothing more to prune: no-op
    expect(
      await pruneTrail({
        db: t.h.db,
        keys: hsm,
        clock: t.clock,
        auditor: t.auditor,
        applianceId: APPLIANCE,
        retentionDays: 5,
        actor: 'job:audit.prune',
      }),
    ).toMatchObject({ deleted: 0 });
    // deleting the next old record by hand is still a gap; a forged "pruned" checkpoint does not pass
    await t.close();
    tamper(t.file, (db) => db.prepare('DELETE FROM audit_events WHERE seq = 101').run());
    expect(await verifyFile(t.file)).toMatchObject({ ok: false, firstBadSeq: 101, problem: { code: 'SEQ_GAP' } });
    tamper(t.file, (db) => {
      db.prepare('DELETE FROM audit_events WHERE seq <= 120').run();
      const h = (db.prepare('SELECT hash FROM audit_events WHERE seq = 121').get() as { hash: string }).hash;
      db.prepare(
        `INSERT INTO audit_checkpoints (seq, kind, at, hash, key_name, mac) VALUES (120, 'pruned', 0, ?, 'coffre-audit-checkpoint', ?)`,
      ).run(h, 'ab'.repeat(32));
    });
    expect(await verifyFile(t.file)).toMatchObject({ ok: false, firstBadSeq: 101 });
  });

  it('refuses to prune a trail that does not verify (evidence is kept)', async () => {
    const { t } = await setup(50);
    await write(t, 1, 30);
    t.clock.advance(400 * 86_400_000);
    await t.h.db.updateTable('audit_events').set({ actor: 'user:x' }).where('seq', '=', 7).execute();
    await expect(
      pruneTrail({
        db: t.h.db,
        keys: hsm,
        clock: t.clock,
        auditor: t.auditor,
        applianceId: APPLIANCE,
        retentionDays: 365,
        actor: 'job:audit.prune',
      }),
    ).rejects.toMatchObject({ code: 'AUDIT_TAMPERED' });
    expect(await t.h.db.selectFrom('audit_events').select('seq').execute()).toHaveLength(30);
  });
});

describe('checkpoint cadence (verify holds every stretch to checkpointEvery / checkpointIntervalMs)', () => {
  const cadence = (every: number, intervalMs = 60_000) => ({ every, intervalMs, tickMs: 5000, graceMs: 30_000 });
  const verifyCadence = (t: TestTrail, every: number) =>
    verifyTrail({ db: t.h.db, applianceId: APPLIANCE, keys: hsm, cadence: cadence(every) });

  it('passes a trail the checkpointer kept, through hours of activity and idle days', async () => {
    const { t, cp } = await setup(10);
    for (let i = 0; i < 12; i++) {
      await write(t, i * 4 + 1, i * 4 + 4);
      t.clock.advance(i % 5 === 4 ? 3 * 86_400_000 : 20_000); // a tick every 20 s; sometimes days idle
      await cp.maybe();
    }
    expect(await verifyCadence(t, 10)).toMatchObject({ ok: true, records: 48 });
  });

  it('flags a stretch of activity longer than the interval whose checkpoint was deleted, with the range and the rule', async () => {
    const { t, cp } = await setup(1000);
    for (let i = 0; i < 5; i++) {
      await write(t, i * 3 + 1, i * 3 + 3);
      t.clock.advance(100_000);
      await cp.maybe();
    }
    expect(await verifyCadence(t, 1000)).toMatchObject({ ok: true });
    const cps = (await stored(t)).map((c) => c[0]);
    expect(cps).toEqual(expect.arrayContaining([3, 6, 9, 12, 15])); // (and the first record's, by hint)
    await t.h.db.deleteFrom('audit_checkpoints').where('seq', '=', 6).execute();
    const r = await verifyCadence(t, 1000);
    expect(r).toMatchObject({ ok: false, firstBadSeq: 7, problem: { code: 'CHECKPOINT_OVERDUE' } });
    expect(r.problem!.message).toMatch(
      /^records 4–9 \(6 record\(s\), .*\) went without a checkpoint before the checkpoint that closes it: one was due after 60000 ms of activity, by .*, yet record 7 was written at .*; checkpoints were deleted or the chain was rewritten from seq 4 on$/,
    );
    // without the cadence (e.g. an older caller) the chain itself still verifies: the later checkpoint vouches for it
    expect(await verifyTrail({ db: t.h.db, applianceId: APPLIANCE, keys: hsm })).toMatchObject({ ok: true });
  });

  it('a stretch holding a chained checkpoint failure (HSM down) is excused once a checkpoint closes it, never in the tail', async () => {
    const { t, cp } = await setup(1000);
    await write(t, 1, 3);
    await cp.maybe();
    t.clock.advance(10_000);
    await write(t, 4, 5);
    t.clock.advance(70_000);
    await t.auditor.recordNow({
      action: 'audit.checkpoint',
      actor: 'system',
      outcome: 'failure',
      reason: 'KEYS_UNAVAILABLE',
    });
    t.clock.advance(600_000);
    await write(t, 7, 8);
    const tail = await verifyCadence(t, 1000);
    expect(tail).toMatchObject({ ok: false, firstBadSeq: 7, problem: { code: 'CHECKPOINT_OVERDUE' } });
    expect(tail.problem!.message).toContain('and no checkpoint follows');
    await cp.maybe();
    expect(await verifyCadence(t, 1000)).toMatchObject({ ok: true, records: 8 });
  });

  it('flags more than twice checkpointEvery records without a checkpoint, whatever their dates (tail rewritten after a cut)', async () => {
    const { t, cp } = await setup(10);
    await write(t, 1, 10);
    await cp.checkpoint('manual');
    expect((await stored(t)).at(-1)![0]).toBe(10);
    await t.close();
    // the intruder cuts the tail at 10 and writes 25 records of their own, all dated at once, re-chained
    tamper(t.file, (db) => {
      const last = db.prepare('SELECT hash FROM audit_events WHERE seq = 10').get() as { hash: string };
      let prev = last.hash;
      const ins = db.prepare(
        'INSERT INTO audit_events (seq, at, actor, action, outcome, reason, targets, source_ip, user_agent, request_id, hash) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?)',
      );
      const at = t.clock.nowMs();
      for (let seq = 11; seq <= 35; seq++) {
        prev = chainHash(
          prev,
          canonicalEncoding({
            seq,
            at,
            actor: 'system',
            action: 'doc.read',
            outcome: 'success',
            reason: null,
            targets: [],
            sourceIp: null,
            userAgent: null,
            requestId: null,
          }),
        );
        ins.run(seq, at, 'system', 'doc.read', 'success', prev);
      }
      db.prepare('UPDATE audit_head SET seq = 35, hash = ?').run(prev);
    });
    const h = openDatabase({ type: 'sqlite', file: t.file, busyTimeoutMs: 5000 });
    try {
      expect(await verifyTrail({ db: h.db, applianceId: APPLIANCE, keys: hsm })).toMatchObject({ ok: true }); // the chain alone holds
      const r = await verifyTrail({ db: h.db, applianceId: APPLIANCE, keys: hsm, cadence: cadence(10) });
      expect(r).toMatchObject({ ok: false, firstBadSeq: 31, problem: { code: 'CHECKPOINT_OVERDUE' } });
      expect(r.problem!.message).toMatch(
        /^records 11–35 \(25 record\(s\), .*\) went without a checkpoint and no checkpoint follows: record 31 is more than twice checkpointEvery \(10\) records after the last checkpoint; checkpoints were deleted or the chain was rewritten from seq 11 on$/,
      );
    } finally {
      await h.close();
    }
  });
});
