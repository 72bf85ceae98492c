import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { DbAuditor, exportJsonLines, queryEvents, verifyTrail } from '../../src/audit/index.js';
import { FakeClock } from '../../src/shared/clock.js';
import { up as auditTables } from '../../migrations/2026-11-22T1500-audit.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { ev, silentLog } from './support.js';

/**
 * The same trail on PostgreSQL (the scale-out database): several connection pools (as several
 * processes or nodes would have) append at once; the row lock on audit_head keeps the chain linear.
 */
let pg: TestPostgres;
const handles: DatabaseHandle[] = [];
const open = () => {
  const h = openDatabase({
    type: 'postgres',
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    ssl: false,
    maxConnections: 8,
  });
  handles.push(h);
  return h;
};
beforeAll(async () => {
  pg = await startPostgres();
  const h = open();
  await h.db.schema
    .createTable('appliance_meta')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  await auditTables(h.db);
}, 60_000);
afterAll(async () => {
  for (const h of handles) await h.close().catch(() => undefined);
  await pg?.stop();
});

describe('audit trail on PostgreSQL', () => {
  it('stays linear with four pools writing at once (group commits and callers’ transactions)', async () => {
    const clock = new FakeClock();
    const writers = [open(), open(), open(), open()].map((h) => ({
      h,
      auditor: new DbAuditor({ db: h.db, clock, log: silentLog(), maxBatch: 50 }),
    }));
    const jobs: Promise<unknown>[] = [];
    for (const [w, { h, auditor }] of writers.entries()) {
      for (let i = 0; i < 250; i++) {
        if (i % 10 === 0) {
          jobs.push(
            h.db.transaction().execute(async (trx) => {
              await trx
                .insertInto('appliance_meta')
                .values({ key: `w${w}-${i}`, value: 'v' })
                .execute();
              await auditor.record(trx, ev(w * 1000 + i, { action: 'settings.change' }));
            }),
          );
        } else jobs.push(auditor.recordNow(ev(w * 1000 + i)));
      }
    }
    await Promise.all(jobs);
    const db = writers[0]!.h.db;
    const seqs = (await db.selectFrom('audit_events').select('seq').orderBy('seq').execute()).map((r) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(await verifyTrail({ db, applianceId: 'pg-appliance' })).toMatchObject({
      ok: true,
      records: 1000,
      lastSeq: 1000,
    });
    // a rolled-back caller leaves neither its change nor its record, nor a gap
    await expect(
      db.transaction().execute(async (trx) => {
        await writers[1]!.auditor.record(trx, ev(5000));
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    await writers[2]!.auditor.recordNow(ev(5001));
    expect(await verifyTrail({ db, applianceId: 'pg-appliance' })).toMatchObject({ ok: true, records: 1001 });
    for (const w of writers) await w.auditor.close();
  });

  it('queries, exports and detects tampering the same way', async () => {
    const { db } = handles[0]!;
    const p = await queryEvents(
      db,
      { action: 'settings.change', target: 'd3040', targetKind: 'document' },
      { limit: 10 },
    );
    expect(p.events).toHaveLength(1);
    expect(p.events[0]).toMatchObject({ action: 'settings.change', targets: { document: 'd3040' } });
    const lines: string[] = [];
    const s = await exportJsonLines(
      db,
      'pg-appliance',
      { from: 0, to: Date.UTC(2100, 0, 1) },
      (l) => void lines.push(l),
    );
    expect(s).toMatchObject({ records: 1001, firstSeq: 1, lastSeq: 1001 });
    await sql`UPDATE audit_events SET outcome = 'denied' WHERE seq = 321`.execute(db);
    expect(await verifyTrail({ db, applianceId: 'pg-appliance' })).toMatchObject({
      ok: false,
      firstBadSeq: 321,
      problem: { code: 'HASH_MISMATCH' },
    });
    await sql`UPDATE audit_events SET outcome = 'success' WHERE seq = 321`.execute(db);
    await sql`DELETE FROM audit_events WHERE seq = 600`.execute(db);
    expect(await verifyTrail({ db, applianceId: 'pg-appliance' })).toMatchObject({
      ok: false,
      firstBadSeq: 600,
      problem: { code: 'SEQ_GAP' },
    });
  });
});
