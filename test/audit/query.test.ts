import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalEncoding,
  chainHash,
  exportJsonLines,
  queryEvents,
  type ExportedRecord,
} from '../../src/audit/index.js';
import { build } from '../../src/http/index.js';
import { auditRoutes } from '../../src/audit/routes.js';
import { ev, openTrail, rmrf, silentLog, type TestTrail } from './support.js';
import { Value } from '@sinclair/typebox/value';
import { HttpSection } from '../../src/config/sections/http.js';
import type { AuditService } from '../../src/audit/service.js';

let t: TestTrail;
const T0 = Date.UTC(2026, 10, 2, 9, 0, 0);
beforeAll(async () => {
  t = await openTrail();
  // 300 events, one per minute, varied actors, actions, outcomes and targets
  for (let i = 1; i <= 300; i++) {
    t.clock.set(T0 + (i - 1) * 60_000);
    await t.auditor.recordNow(
      ev(i, {
        actor: `user:u${i % 5}`,
        action: i % 3 === 0 ? 'auth.login' : i % 3 === 1 ? 'doc.read' : 'auth.logout',
        outcome: i % 10 === 0 ? 'denied' : 'success',
        ...(i % 10 === 0 ? { reason: 'FORBIDDEN' } : {}),
        targets: { workspace: `w${i % 4}`, document: `d${i}` },
      }),
    );
  }
});
afterAll(async () => {
  await t.close();
  rmrf(t.dir);
});

describe('the auditor’s query', () => {
  it('filters by actor, action (exact and prefix), target, outcome and time, newest first', async () => {
    const byActor = await queryEvents(t.h.db, { actor: 'user:u2' }, { limit: 1000 });
    expect(byActor.events).toHaveLength(60);
    expect(byActor.events.every((e) => e.actor === 'user:u2')).toBe(true);
    expect(byActor.events[0]!.seq).toBeGreaterThan(byActor.events[1]!.seq);
    expect((await queryEvents(t.h.db, { action: 'auth.login' }, { limit: 1000 })).events).toHaveLength(100);
    const auth = (await queryEvents(t.h.db, { action: 'auth.*' }, { limit: 1000 })).events;
    expect(auth).toHaveLength(200);
    expect(new Set(auth.map((e) => e.action))).toEqual(new Set(['auth.login', 'auth.logout']));
    expect((await queryEvents(t.h.db, { target: 'd42' }, { limit: 10 })).events.map((e) => e.seq)).toEqual([42]);
    expect((await queryEvents(t.h.db, { target: 'w1', targetKind: 'workspace' }, { limit: 1000 })).events).toHaveLength(
      75,
    );
    expect((await queryEvents(t.h.db, { target: 'w1', targetKind: 'document' }, { limit: 1000 })).events).toHaveLength(
      0,
    );
    const denied = (await queryEvents(t.h.db, { outcome: 'denied' }, { limit: 1000 })).events;
    expect(denied.map((e) => e.seq)).toEqual([
      300, 290, 280, 270, 260, 250, 240, 230, 220, 210, 200, 190, 180, 170, 160, 150, 140, 130, 120, 110, 100, 90, 80,
      70, 60, 50, 40, 30, 20, 10,
    ]);
    expect(denied[0]).toMatchObject({
      reason: 'FORBIDDEN',
      targets: { document: 'd300', workspace: 'w0' },
      source: { ip: '192.0.2.10' },
    });
    const window = (await queryEvents(t.h.db, { from: T0 + 10 * 60_000, to: T0 + 20 * 60_000 }, { limit: 1000 }))
      .events;
    expect(window.map((e) => e.seq)).toEqual([20, 19, 18, 17, 16, 15, 14, 13, 12, 11]);
    const combined = (
      await queryEvents(
        t.h.db,
        { actor: 'user:u0', action: 'auth.*', outcome: 'denied', from: T0, to: T0 + 120 * 60_000 },
        { limit: 1000 },
      )
    ).events;
    expect(combined.map((e) => e.seq)).toEqual([120, 110, 90, 80, 60, 50, 30, 20]); // i%10==0 and not doc.read (i%3==1)
  });

  it('paginates with an opaque cursor, stable while records are appended', async () => {
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const p = await queryEvents(t.h.db, { action: 'doc.read' }, { limit: 33, cursor });
      seen.push(...p.events.map((e) => e.seq));
      cursor = p.nextCursor ?? undefined;
      if (pages++ === 0) await t.auditor.recordNow(ev(999, { action: 'doc.read' })); // newer: not in this walk
    } while (cursor);
    expect(seen).toHaveLength(100);
    expect(new Set(seen).size).toBe(100);
    expect(pages).toBe(4);
    await expect(queryEvents(t.h.db, {}, { limit: 10, cursor: 'bm9wZQ' })).rejects.toMatchObject({
      code: 'BAD_CURSOR',
      httpStatus: 400,
    });
  });

  it('exports a time range as JSON lines whose chain recomputes from the given previous hash', async () => {
    const lines: string[] = [];
    const s = await exportJsonLines(
      t.h.db,
      'appliance-1',
      { from: T0 + 100 * 60_000, to: T0 + 150 * 60_000 },
      (l) => void lines.push(l),
    );
    expect(s).toEqual({ records: 50, firstSeq: 101, lastSeq: 150 });
    const [head, ...rest] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(head).toMatchObject({
      type: 'coffre.audit.export',
      firstSeq: 101,
      lastSeq: 150,
      prevHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    let prev = head!.prevHash as string;
    for (const r of rest.filter((x) => x.type === 'coffre.audit.event') as unknown as ExportedRecord[]) {
      const rec = {
        seq: r.seq,
        at: Date.parse(r.at),
        actor: r.actor,
        action: r.action,
        outcome: r.outcome as 'success',
        reason: r.reason,
        targets: Object.entries(r.targets).sort(([a], [b]) => (a < b ? -1 : 1)),
        sourceIp: r.source.ip,
        userAgent: r.source.userAgent,
        requestId: r.source.requestId,
      };
      prev = chainHash(prev, canonicalEncoding(rec));
      expect(prev).toBe(r.hash);
    }
    const none: string[] = [];
    expect(await exportJsonLines(t.h.db, 'appliance-1', { from: 0, to: 1 }, (l) => void none.push(l))).toEqual({
      records: 0,
      firstSeq: null,
      lastSeq: null,
    });
    expect(none).toHaveLength(1);
  });

  it('serves the routes only to authenticated callers with the declared permissions', async () => {
    const seen: { url: string; permission?: string }[] = [];
    const app = await build({
      http: Value.Default(HttpSection, {}) as never,
      log: silentLog(),
      api: [
        async (api) => {
          api.addHook(
            'onRoute',
            (r) =>
              void seen.push({ url: r.url, permission: (r.config as { permission?: string } | undefined)?.permission }),
          );
          await api.register(auditRoutes({} as AuditService));
        },
      ],
    });
    await app.ready();
    expect(seen.filter((r) => r.url.includes('/audit/'))).toEqual(
      expect.arrayContaining([
        { url: '/api/v1/audit/events', permission: 'audit:read' },
        { url: '/api/v1/audit/export', permission: 'audit:read' },
        { url: '/api/v1/audit/verify', permission: 'audit:verify' },
      ]),
    );
    for (const [method, url] of [
      ['GET', '/api/v1/audit/events'],
      ['GET', '/api/v1/audit/export?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z'],
      ['POST', '/api/v1/audit/verify'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode).toBe(401);
    }
    await app.close();
  });
});
