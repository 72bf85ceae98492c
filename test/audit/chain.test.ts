import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { canonicalEncoding, chainHash, GENESIS_HASH, verifyTrail } from '../../src/audit/index.js';
import { normalizeEvent } from '../../src/audit/canonical.js';
import { openDatabase } from '../../src/db/index.js';
import { ev, openTrail, rmrf, silentLog, tamper, type TestTrail } from './support.js';
import { DbAuditor } from '../../src/audit/index.js';

const APPLIANCE = 'a1b2c3d4-0000-4000-8000-000000000001';
let t: TestTrail | undefined;
afterEach(async () => {
  if (t) {
    await t.close().catch(() => undefined);
    rmrf(t.dir);
    t = undefined;
  }
});

async function verifyFile(file: string) {
  const h = openDatabase({ type: 'sqlite', file, busyTimeoutMs: 5000 });
  try {
    return await verifyTrail({ db: h.db, applianceId: APPLIANCE });
  } finally {
    await h.close();
  }
}

/** a trail of n records written through the real auditor, then closed */
async function trailOf(n: number): Promise<TestTrail> {
  t = await openTrail();
  await Promise.all(Array.from({ length: n }, (_, i) => t!.auditor.recordNow(ev(i + 1))));
  await t.auditor.close();
  await t.h.close();
  return t;
}

describe('canonical encoding', () => {
  it('matches the test vector of docs/formats.md', () => {
    const rec = normalizeEvent(
      {
        action: 'auth.login',
        actor: 'user:42',
        outcome: 'failure',
        reason: 'BAD_PASSWORD',
        targets: { user: '42', session: 's-1' },
        source: { ip: '2001:db8::1', userAgent: 'curl/8.5.0', requestId: 'r-1' },
      },
      Date.UTC(2026, 10, 22, 15, 0, 0, 123),
    );
    const c = canonicalEncoding({ ...rec, seq: 1 });
    expect(c).toBe(
      '["coffre-audit/1",1,"2026-11-22T15:00:00.123Z","user:42","auth.login","failure","BAD_PASSWORD",[["session","s-1"],["user","42"]],"2001:db8::1","curl/8.5.0","r-1"]',
    );
    expect(chainHash(GENESIS_HASH, c)).toBe('62dc9b14197289a8503e23cecb32d12e23b73c289ec07fa3916cbdfd2ea0a83a');
  });

  it('refuses events that could carry secrets or names, without echoing them', () => {
    const bad = [
      { action: 'Auth Login', actor: 'user:1', outcome: 'success' },
      { action: 'auth.login', actor: 'bob', outcome: 'success' },
      { action: 'auth.login', actor: 'user:1', outcome: 'ok' },
      { action: 'auth.login', actor: 'user:1', outcome: 'failure', reason: 'wrong password hunter2' },
      { action: 'doc.read', actor: 'user:1', outcome: 'success', targets: { document: 'Quarterly results.pdf' } },
      { action: 'doc.read', actor: 'user:1', outcome: 'success', source: { ip: 'example.org' } },
    ];
    for (const e of bad) {
      let err: unknown;
      try {
        normalizeEvent(e as never, 0);
      } catch (x) {
        err = x;
      }
      expect((err as { code?: string }).code).toBe('AUDIT_INVALID_EVENT');
      expect((err as Error).message).not.toMatch(/hunter2|Quarterly|bob|example\.org/);
    }
  });
});

describe('DbAuditor', () => {
  it('writes a linear chain under concurrent writers and a clean trail verifies', async () => {
    t = await openTrail();
    const { auditor, h } = t;
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 500; i++) writes.push(auditor.recordNow(ev(i)));
    // writers inside callers' transactions interleave with the group commits
    for (let i = 0; i < 20; i++) {
      writes.push(
        h.db.transaction().execute(async (trx) => {
          await trx
            .insertInto('appliance_meta')
            .values({ key: `k${i}`, value: 'v' })
            .execute();
          await auditor.record(trx, ev(1000 + i, { action: 'settings.change' }));
        }),
      );
    }
    await Promise.all(writes);
    const seqs = (await h.db.selectFrom('audit_events').select('seq').orderBy('seq').execute()).map((r) =>
      Number(r.seq),
    );
    expect(seqs).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
    const head = await h.db.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
    expect(Number(head.seq)).toBe(520);
    const r = await verifyTrail({ db: h.db, applianceId: APPLIANCE });
    expect(r).toMatchObject({ ok: true, records: 520, firstSeq: 1, lastSeq: 520 });
    // targets are indexed for queries
    const tg = await h.db.selectFrom('audit_targets').select('seq').where('id', '=', 'd7').execute();
    expect(tg.map((x) => Number(x.seq))).toHaveLength(1);
  });

  it('verifies a live trail while writers keep appending (no false alarm)', async () => {
    t = await openTrail();
    const { auditor, h } = t;
    await Promise.all(Array.from({ length: 200 }, (_, i) => auditor.recordNow(ev(i))));
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        await Promise.all(Array.from({ length: 20 }, (_, j) => auditor.recordNow(ev(i * 20 + j))));
      }
    })();
    const reports = [];
    for (let k = 0; k < 15; k++) {
      reports.push(await verifyTrail({ db: h.db, applianceId: APPLIANCE, pageSize: 64 }));
      await new Promise((r) => setTimeout(r, 2));
    }
    stop = true;
    await writer;
    expect(reports.every((r) => r.ok)).toBe(true);
    expect(reports.at(-1)!.records).toBeGreaterThan(reports[0]!.records);
  });

  it('turns recordNow inside a held SQLite transaction (a deadlock) into an error that writes nothing', async () => {
    t = await openTrail();
    const auditor = new DbAuditor({ db: t.h.db, clock: t.clock, log: silentLog(), startTimeoutMs: 300 });
    const err = await t.h.db
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('appliance_meta').values({ key: 'k', value: 'v' }).execute();
        await auditor.recordNow(ev(1)); // wrong: should be record(trx, …)
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('TIMEOUT') });
    await auditor.recordNow(ev(2));
    const rows = await t.h.db.selectFrom('audit_events').select(['seq', 'request_id']).execute();
    expect(rows).toEqual([{ seq: 1, request_id: 'req-2' }]);
    expect(await t.h.db.selectFrom('appliance_meta').selectAll().where('key', '=', 'k').execute()).toHaveLength(0);
    await auditor.close();
  });

  it('rolls the caller’s change back with its audit record, and refuses record() outside a transaction', async () => {
    t = await openTrail();
    const { auditor, h } = t;
    await expect(
      h.db.transaction().execute(async (trx) => {
        await auditor.record(trx, ev(1));
        await trx.insertInto('appliance_meta').values({ key: 'x', value: 'y' }).execute();
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    expect(await h.db.selectFrom('audit_events').selectAll().execute()).toHaveLength(0);
    expect(Number((await h.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow()).seq)).toBe(0);
    await expect(auditor.record(h.db, ev(2))).rejects.toMatchObject({ code: 'AUDIT_NOT_IN_TRANSACTION' });
    await auditor.recordNow(ev(3));
    expect((await verifyTrail({ db: h.db, applianceId: APPLIANCE })).ok).toBe(true);
  });

  it('refuses the recorded action when the database is full', async () => {
    t = await openTrail();
    const { auditor, h } = t;
    await auditor.recordNow(ev(1));
    const pages = Number((await sql<{ page_count: number }>`PRAGMA page_count`.execute(h.db)).rows[0]!.page_count);
    await sql.raw(`PRAGMA max_page_count = ${pages}`).execute(h.db);
    const big = 'x'.repeat(200_000);
    // the caller's change and its record: both refused, nothing half-written
    const err = await h.db
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('appliance_meta').values({ key: 'change', value: 'small' }).execute();
        for (let i = 0; i < 50; i++)
          await auditor.record(
            trx,
            ev(100 + i, { source: { userAgent: big.slice(0, 256), requestId: `r${i}`.padEnd(120, 'z') } }),
          );
        await trx.insertInto('appliance_meta').values({ key: 'big', value: big }).execute();
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const many = await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        auditor.recordNow(ev(i)).then(
          () => 'ok',
          (e: { code?: string; httpStatus?: number; message: string }) => e,
        ),
      ),
    );
    const refused = many.filter((x) => x !== 'ok') as { code?: string; httpStatus?: number; message: string }[];
    expect(refused.length).toBeGreaterThan(0);
    // a full database is reported as such (507), with where and how much room is left
    expect(refused[0]).toMatchObject({ code: 'STORAGE_FULL', httpStatus: 507 });
    expect(refused[0]!.message).toContain('SQLITE_FULL');
    expect(await h.db.selectFrom('appliance_meta').selectAll().where('key', '=', 'change').execute()).toHaveLength(0);
    await sql.raw('PRAGMA max_page_count = 1073741823').execute(h.db);
    const r = await verifyTrail({ db: h.db, applianceId: APPLIANCE });
    expect(r.ok).toBe(true);
    expect(r.records).toBe(1 + many.filter((x) => x === 'ok').length);
  });

  it('refuses the recorded action when the database is read-only', async () => {
    t = await openTrail();
    await t.auditor.recordNow(ev(1));
    await sql`PRAGMA query_only = ON`.execute(t.h.db);
    await expect(t.auditor.recordNow(ev(2))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', httpStatus: 503 });
    await expect(t.h.db.transaction().execute((trx) => t!.auditor.record(trx, ev(3)))).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
    });
    await sql`PRAGMA query_only = OFF`.execute(t.h.db);
    const r = await verifyTrail({ db: t.h.db, applianceId: APPLIANCE });
    expect(r).toMatchObject({ ok: true, records: 1 });
  });
});

describe('tampering with the SQLite file is detected', () => {
  it('a clean trail verifies', async () => {
    const { file } = await trailOf(50);
    expect(await verifyFile(file)).toMatchObject({ ok: true, records: 50, lastSeq: 50 });
  });

  it('one modified field of one record', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => db.prepare(`UPDATE audit_events SET actor = 'user:intruder' WHERE seq = 17`).run());
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 17, problem: { code: 'HASH_MISMATCH' } });
  });

  it('a modified time or target', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => db.prepare(`UPDATE audit_events SET at = at + 1 WHERE seq = 33`).run());
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 33 });
    tamper(file, (db) => {
      db.prepare(`UPDATE audit_events SET at = at - 1 WHERE seq = 33`).run();
      db.prepare(`UPDATE audit_events SET targets = '[["document","d999"],["workspace","w0"]]' WHERE seq = 12`).run();
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 12 });
  });

  it('a deleted record', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => db.prepare(`DELETE FROM audit_events WHERE seq = 20`).run());
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 20, problem: { code: 'SEQ_GAP' } });
  });

  it('a forged record inserted in the middle (later records renumbered)', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => {
      const row = db.prepare('SELECT * FROM audit_events WHERE seq = 30').get() as Record<string, unknown>;
      db.prepare('UPDATE audit_events SET seq = -seq WHERE seq >= 30').run();
      db.prepare('UPDATE audit_events SET seq = -seq + 1 WHERE seq < 0').run();
      db.prepare(
        'INSERT INTO audit_events (seq, at, actor, action, outcome, reason, targets, source_ip, user_agent, request_id, hash) VALUES (30, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?)',
      ).run(row.at, 'user:admin', 'keys.rotate', 'success', row.hash);
      db.prepare('UPDATE audit_head SET seq = seq + 1').run();
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 30, problem: { code: 'HASH_MISMATCH' } });
  });

  it('a forged record appended at the end', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) =>
      db
        .prepare(
          `INSERT INTO audit_events (seq, at, actor, action, outcome, hash) VALUES (51, 0, 'user:1', 'doc.read', 'success', ?)`,
        )
        .run('ab'.repeat(32)),
    );
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 51, problem: { code: 'HEAD_MISMATCH' } });
  });

  it('two records swapped', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => {
      db.prepare('UPDATE audit_events SET seq = -1 WHERE seq = 25').run();
      db.prepare('UPDATE audit_events SET seq = 25 WHERE seq = 40').run();
      db.prepare('UPDATE audit_events SET seq = 40 WHERE seq = -1').run();
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 25, problem: { code: 'HASH_MISMATCH' } });
  });

  it('two records’ contents swapped (sequence numbers kept)', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => {
      const a = db.prepare('SELECT actor, targets, request_id FROM audit_events WHERE seq = 8').get() as Record<
        string,
        unknown
      >;
      const b = db.prepare('SELECT actor, targets, request_id FROM audit_events WHERE seq = 9').get() as Record<
        string,
        unknown
      >;
      const set = db.prepare('UPDATE audit_events SET actor = ?, targets = ?, request_id = ? WHERE seq = ?');
      set.run(b.actor, b.targets, b.request_id, 8);
      set.run(a.actor, a.targets, a.request_id, 9);
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 8 });
  });

  it('the per-target index: a row deleted, altered or added is reported, so "who touched this document" cannot silently miss an access', async () => {
    const { file } = await trailOf(50);
    const seqOf = (db: import('better-sqlite3').Database, doc: string) =>
      (db.prepare(`SELECT seq FROM audit_targets WHERE kind = 'document' AND id = ?`).get(doc) as { seq: number }).seq;
    let seq = 0;
    tamper(file, (db) => {
      seq = seqOf(db, 'd23');
      db.prepare(`DELETE FROM audit_targets WHERE seq = ? AND kind = 'document'`).run(seq);
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: seq, problem: { code: 'INDEX_MISMATCH' } });
    tamper(file, (db) => {
      db.prepare(`INSERT INTO audit_targets (seq, kind, id) VALUES (?, 'document', 'd999')`).run(seq);
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: seq, problem: { code: 'INDEX_MISMATCH' } });
    tamper(file, (db) => db.prepare(`UPDATE audit_targets SET id = 'd23' WHERE seq = ? AND id = 'd999'`).run(seq));
    expect(await verifyFile(file)).toMatchObject({ ok: true, records: 50 });
    // an extra row for a record (a user it never touched), and a row for no record
    tamper(file, (db) =>
      db.prepare(`INSERT INTO audit_targets (seq, kind, id) VALUES (?, 'user', 'u7')`).run(seqOf(db, 'd40')),
    );
    expect(await verifyFile(file)).toMatchObject({ ok: false, problem: { code: 'INDEX_MISMATCH' } });
    tamper(file, (db) => {
      db.prepare(`DELETE FROM audit_targets WHERE kind = 'user' AND id = 'u7'`).run();
      db.prepare(`INSERT INTO audit_targets (seq, kind, id) VALUES (0, 'document', 'd7')`).run();
    });
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 0, problem: { code: 'INDEX_MISMATCH' } });
  });

  it('the tail cut off', async () => {
    const { file } = await trailOf(50);
    tamper(file, (db) => db.prepare('DELETE FROM audit_events WHERE seq > 44').run());
    expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadSeq: 45, problem: { code: 'TRUNCATED' } });
  });
});
