import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, tokenFor } from '../auth/helpers.js';

/** The auditor's API through the real identity module (tokens, roles, permission gate). */
let env: IdentityEnv;
let auditor: string;
let member: string;
let admin: string;
beforeAll(async () => {
  env = await openIdentityEnv();
  auditor = await tokenFor(env, await enrolUser(env, 'audrey', 'auditor'));
  member = await tokenFor(env, await enrolUser(env, 'max', 'member'));
  admin = await tokenFor(env, await enrolUser(env, 'ada', 'admin'));
}, 120_000);
afterAll(async () => {
  await env?.close();
});

const as = (token: string) => ({ authorization: `Bearer ${token}`, 'user-agent': 'audit-test/1.0' });

describe('audit API', () => {
  it('lets the auditor query with filters and pagination, and records each query first', async () => {
    const r = await env.app.inject({
      url: '/api/v1/audit/events?action=auth.*&limit=2',
      headers: as(auditor),
      remoteAddress: '203.0.113.5',
    });
    expect(r.statusCode, r.body).toBe(200);
    const page = r.json() as { events: { seq: number; action: string; hash: string }[]; nextCursor: string | null };
    expect(page.events).toHaveLength(2);
    expect(page.events.every((e) => e.action.startsWith('auth.'))).toBe(true);
    expect(page.nextCursor).toEqual(expect.any(String));
    const next = await env.app.inject({
      url: `/api/v1/audit/events?action=auth.*&limit=2&cursor=${page.nextCursor}`,
      headers: as(auditor),
    });
    expect(next.statusCode).toBe(200);
    expect((next.json() as typeof page).events[0]!.seq).toBeLessThan(page.events[1]!.seq);
    // the query itself is in the trail, with who, from where and which request
    const mine = await env.app.inject({ url: '/api/v1/audit/events?action=audit.query&limit=5', headers: as(auditor) });
    const q = (
      mine.json() as { events: { actor: string; source: { ip: string; userAgent: string; requestId: string } }[] }
    ).events;
    expect(q.length).toBeGreaterThanOrEqual(3);
    expect(q.at(-1)).toMatchObject({
      actor: expect.stringMatching(/^(user|token):/),
      source: { ip: '203.0.113.5', userAgent: 'audit-test/1.0', requestId: expect.any(String) },
    });
    // bad input: precise 400
    expect((await env.app.inject({ url: '/api/v1/audit/events?limit=5000', headers: as(auditor) })).statusCode).toBe(
      400,
    );
    expect(
      (await env.app.inject({ url: '/api/v1/audit/events?cursor=bm9wZQ', headers: as(auditor) })).json(),
    ).toMatchObject({ error: { code: 'BAD_CURSOR' } });
    expect(
      (await env.app.inject({ url: '/api/v1/audit/events?from=yesterday', headers: as(auditor) })).statusCode,
    ).toBe(400);
  });

  it('exports JSON lines and verifies the trail for the auditor', async () => {
    const x = await env.app.inject({
      url: '/api/v1/audit/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z',
      headers: as(auditor),
    });
    expect(x.statusCode).toBe(200);
    expect(x.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = x.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]).toMatchObject({ type: 'coffre.audit.export' });
    expect(lines.filter((l) => l.type === 'coffre.audit.event').length).toBeGreaterThan(5);
    const v = await env.app.inject({ method: 'POST', url: '/api/v1/audit/verify', headers: as(auditor) });
    expect(v.statusCode, v.body).toBe(200);
    expect(v.json()).toMatchObject({ ok: true, checkpoints: { macChecked: true } });
    const bad = await env.app.inject({
      method: 'POST',
      url: '/api/v1/audit/verify',
      headers: as(auditor),
      payload: { checkpoints: [{ hello: 1 }] },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('refuses everyone else: anonymous 401, member and admin 403', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/audit/events'],
      ['GET', '/api/v1/audit/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z'],
      ['POST', '/api/v1/audit/verify'],
    ] as const) {
      expect((await env.app.inject({ method, url })).statusCode).toBe(401);
      expect((await env.app.inject({ method, url, headers: as(member) })).statusCode).toBe(403);
      expect((await env.app.inject({ method, url, headers: as(admin) })).statusCode).toBe(403);
    }
    // each denial is in the trail
    const denied = await env.app.inject({
      url: '/api/v1/audit/events?action=access.denied&limit=1000',
      headers: as(auditor),
    });
    const evs = (denied.json() as { events: { outcome: string; reason: string; targets: Record<string, string> }[] })
      .events;
    expect(evs.length).toBeGreaterThanOrEqual(6);
    expect(evs[0]).toMatchObject({
      outcome: 'denied',
      reason: 'PERMISSION',
      targets: {
        permission: expect.stringMatching(/^audit:/),
        method: expect.any(String),
        route: expect.stringMatching(/^\/api\/v1\/audit\//),
      },
    });
  });

  it('refuses to release audit data it cannot record reading: 503 AUDIT_UNAVAILABLE, nothing sent', async () => {
    const db = env.t.appliance.db.db;
    // the database refuses every write: SQLite's query_only, or on PostgreSQL a trigger on the trail
    const pg = env.t.appliance.db.dialect === 'postgres';
    if (pg) {
      await sql`CREATE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'read only'; END $$`.execute(
        db,
      );
      await sql`CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION refuse_write()`.execute(
        db,
      );
    } else await sql`PRAGMA query_only = ON`.execute(db);
    try {
      const r = await env.app.inject({ url: '/api/v1/audit/events?limit=5', headers: as(auditor) });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toMatchObject({ error: { code: 'AUDIT_UNAVAILABLE' } });
      expect(r.body).not.toContain('"events"');
      const x = await env.app.inject({
        url: '/api/v1/audit/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z',
        headers: as(auditor),
      });
      expect(x.statusCode).toBe(503);
      expect(x.body).not.toContain('coffre.audit.event');
    } finally {
      if (pg) {
        await sql`DROP TRIGGER refuse_write ON audit_events`.execute(db);
        await sql`DROP FUNCTION refuse_write()`.execute(db);
      } else await sql`PRAGMA query_only = OFF`.execute(db);
    }
    expect((await env.app.inject({ url: '/api/v1/audit/events?limit=5', headers: as(auditor) })).statusCode).toBe(200);
  });
});
