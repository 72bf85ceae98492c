import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, tokenFor, type Enrolled, type Signed } from '../auth/helpers.js';

/** Access reviews (Z4): campaigns, owners and admins deciding, reminders, overdue alert, export. */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
let ws = '';
let token = '';

beforeAll(async () => {
  env = await openIdentityEnv();
  for (const [name, role] of [
    ['alma', 'admin'],
    ['bruno', 'admin'],
    ['oscar', 'member'],
    ['ines', 'member'],
    ['ugo', 'member'],
    ['nadia', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
  ws = (
    await env.app.inject({
      method: 'POST',
      url: '/api/v1/workspaces',
      headers: s.oscar!.headers,
      payload: { name: 'Comptabilité' },
    })
  ).json().id;
  for (const who of ['ines', 'ugo'])
    await env.app.inject({
      method: 'PUT',
      url: `/api/v1/workspaces/${ws}/members/${u[who]!.id}`,
      headers: s.oscar!.headers,
      payload: { role: 'editor' },
    });
  token = await tokenFor(env, u.ugo!);
});
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const req = (who: string, method: 'GET' | 'POST', url: string, payload?: object) =>
  env.app.inject({ method, url, headers: s[who]!.headers, ...(payload ? { payload } : {}) });

describe('access reviews (Z4)', () => {
  it('a campaign: owners decide memberships, admins roles and tokens; revocations apply; decisions audited; closes when done', async () => {
    expect((await req('oscar', 'POST', '/api/v1/access-reviews')).statusCode).toBe(403);
    const start = await req('alma', 'POST', '/api/v1/access-reviews');
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json().id as string;
    expect((await req('alma', 'POST', '/api/v1/access-reviews')).statusCode).toBe(409);
    // the owner sees only the memberships of their workspace; a plain member sees nothing
    const ownerItems = (await req('oscar', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      id: string;
      kind: string;
      userId: string;
      workspaceId: string;
    }[];
    expect(ownerItems.map((i) => i.kind)).toEqual(['membership', 'membership', 'membership']);
    expect(ownerItems.every((i) => i.workspaceId === ws)).toBe(true);
    expect((await req('nadia', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items).toEqual([]);
    // items name people and workspaces: the owner sees the workspace's name, each item says whose it is
    const named = (await req('oscar', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      username: string;
      workspaceName: string | null;
      self: boolean;
      userId: string;
    }[];
    expect(named.map((i) => i.username).sort()).toEqual(['ines', 'oscar', 'ugo']);
    expect(named.every((i) => i.workspaceName === 'Comptabilité')).toBe(true);
    expect(named.filter((i) => i.self).map((i) => i.userId)).toEqual([u.oscar!.id]);
    const adminItems = (await req('alma', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      id: string;
      kind: string;
      userId: string;
      reviewer: string;
      workspaceName: string | null;
      username: string;
    }[];
    // an admin who is not a member sees who, but not the workspace's name (need-to-know)
    expect(adminItems.filter((i) => i.kind === 'membership').every((i) => i.workspaceName === null && i.username)).toBe(
      true,
    );
    expect(adminItems.filter((i) => i.kind === 'role')).toHaveLength(6);
    expect(adminItems.filter((i) => i.kind === 'token')).toHaveLength(1);
    // need-to-know holds in reviews too: the admin cannot decide a membership, nadia neither
    const ugoMembership = ownerItems.find((i) => i.userId === u.ugo!.id)!;
    expect(
      (await req('alma', 'POST', `/api/v1/access-reviews/${id}/items/${ugoMembership.id}`, { decision: 'revoke' }))
        .statusCode,
    ).toBe(404);
    expect(
      (await req('nadia', 'POST', `/api/v1/access-reviews/${id}/items/${ugoMembership.id}`, { decision: 'revoke' }))
        .statusCode,
    ).toBe(404);
    const tokenItem = adminItems.find((i) => i.kind === 'token')!;
    expect(
      (await req('oscar', 'POST', `/api/v1/access-reviews/${id}/items/${tokenItem.id}`, { decision: 'revoke' }))
        .statusCode,
    ).toBe(403);
    // the owner revokes ugo's membership: it is gone at once
    expect(
      (await req('oscar', 'POST', `/api/v1/access-reviews/${id}/items/${ugoMembership.id}`, { decision: 'revoke' }))
        .statusCode,
    ).toBe(200);
    const gone = await env.app.inject({ method: 'GET', url: `/api/v1/workspaces/${ws}`, headers: s.ugo!.headers });
    expect(gone.statusCode).toBe(404);
    // need-to-know refusals are audited with the request's source
    const denial = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'access.denied')
      .where('request_id', '=', gone.json().error.requestId)
      .executeTakeFirst();
    expect(denial?.reason).toBe('NOT_MEMBER');
    expect(denial?.actor).toBe(`user:${u.ugo!.id}`);
    expect(
      (await req('oscar', 'POST', `/api/v1/access-reviews/${id}/items/${ugoMembership.id}`, { decision: 'confirm' }))
        .statusCode,
    ).toBe(409);
    // the admin revokes the token: it stops working
    expect(
      (await req('alma', 'POST', `/api/v1/access-reviews/${id}/items/${tokenItem.id}`, { decision: 'revoke' }))
        .statusCode,
    ).toBe(200);
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } }))
        .statusCode,
    ).toBe(401);
    // …and confirms the rest; nobody reviews their own access: oscar's own membership (he is the
    // only owner) goes to an admin, alma's own role to the other admin
    const self = async (who: string, itemId: string) => {
      const r = await req(who, 'POST', `/api/v1/access-reviews/${id}/items/${itemId}`, { decision: 'confirm' });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('SELF_REVIEW');
    };
    for (const i of ownerItems.filter((x) => x.id !== ugoMembership.id)) {
      if (i.userId === u.oscar!.id) {
        await self('oscar', i.id);
        expect(
          (await req('alma', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' })).statusCode,
        ).toBe(200);
      } else
        expect(
          (await req('oscar', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' }))
            .statusCode,
        ).toBe(200);
    }
    for (const i of adminItems.filter((x) => x.kind === 'role')) {
      if (i.userId === u.alma!.id) {
        await self('alma', i.id);
        expect(
          (await req('bruno', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' }))
            .statusCode,
        ).toBe(200);
      } else
        expect(
          (await req('alma', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' })).statusCode,
        ).toBe(200);
    }
    const decided = (await req('oscar', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      userId: string;
      decidedByName: string | null;
    }[];
    expect(decided.find((i) => i.userId === u.oscar!.id)!.decidedByName).toBe('alma');
    expect(decided.find((i) => i.userId === u.ines!.id)!.decidedByName).toBe('oscar');
    const list = (await req('nadia', 'GET', '/api/v1/access-reviews')).json().reviews as {
      id: string;
      closedAt: string | null;
      pending: number;
    }[];
    expect(list[0]).toMatchObject({ id, pending: 0 });
    expect(list[0]!.closedAt).not.toBeNull();
    const audit = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['action', 'reason'])
      .where('action', 'like', 'access.review%')
      .execute();
    const decisions = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['reason', 'outcome'])
      .where('action', '=', 'access.review.decision')
      .execute();
    expect(decisions.filter((a) => a.outcome === 'success')).toHaveLength(adminItems.length); // every item, memberships included
    // every refused decision is recorded too: the admin's and nadia's need-to-know refusals, oscar's token, the repeat, both self-reviews
    expect(
      decisions
        .filter((a) => a.outcome === 'denied')
        .map((a) => a.reason)
        .sort(),
    ).toEqual(['ALREADY_DECIDED', 'NOT_FOUND', 'NOT_FOUND', 'NOT_REVIEWER', 'SELF_REVIEW', 'SELF_REVIEW']);
    expect(audit.some((a) => a.action === 'access.review.close')).toBe(true);
    expect(audit.filter((a) => a.reason === 'REVOKE')).toHaveLength(2);
  });

  it('the scheduled job opens a campaign; reminders go by mail; an overdue campaign raises one alert', async () => {
    const sched = env.t.appliance.scheduler;
    const r = await sched.run('access.review', { trigger: 'cli', actor: 'local:test' });
    expect((r.result as { started: boolean }).started).toBe(true);
    const first = await sched.run('access.review.remind', { trigger: 'cli', actor: 'local:test' });
    expect((first.result as { reminded: number }).reminded).toBeGreaterThanOrEqual(2); // alma (admin) and oscar (owner)
    const mail = await env.smtp.next('oscar@example.test');
    expect(mail.raw).toMatch(/access review is waiting/);
    const again = await sched.run('access.review.remind', { trigger: 'cli', actor: 'local:test' });
    expect((again.result as { reminded: number }).reminded).toBe(0); // at most weekly
    env.clock.advance(15 * 86_400_000);
    const late = await sched.run('access.review.remind', { trigger: 'cli', actor: 'local:test' });
    expect((late.result as { overdue: boolean }).overdue).toBe(true);
    const later = await sched.run('access.review.remind', { trigger: 'cli', actor: 'local:test' });
    expect((later.result as { overdue: boolean }).overdue).toBe(false);
    const alerts = await env.t.appliance.db.db
      .selectFrom('alerts')
      .selectAll()
      .where('kind', '=', 'access.review.overdue')
      .execute();
    expect(alerts).toHaveLength(1);
  });

  it('export: users × roles × workspaces × tokens × last use as JSON and CSV; accounts idle over 90 days flagged', async () => {
    env.clock.advance(80 * 86_400_000);
    const s2 = await signIn(env, u.alma!);
    const json = await env.app.inject({ method: 'GET', url: '/api/v1/access-reviews/export', headers: s2.headers });
    expect(json.statusCode).toBe(200);
    const users = json.json().users as {
      username: string;
      role: string;
      idleOver: number | null;
      workspaces: { id: string; role: string }[];
      tokens: unknown[];
    }[];
    const by = (n: string) => users.find((x) => x.username === n)!;
    expect(by('alma').idleOver).toBeNull();
    expect(by('nadia').idleOver).toBe(90);
    expect(by('oscar').workspaces).toEqual([{ id: ws, role: 'owner' }]);
    expect(by('ugo').workspaces).toEqual([]);
    expect(json.body).not.toMatch(/example\.test|argon2|cft_/);
    const csv = await env.app.inject({
      method: 'GET',
      url: '/api/v1/access-reviews/export?format=csv',
      headers: s2.headers,
    });
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe(
      'user_id,username,role,state,second_factor,last_login_at,last_seen_at,idle,kind,workspace_id,workspace_role,token_id,token_name,token_scopes,token_expires_at,token_last_used_at',
    );
    expect(lines.some((l) => l.includes(',nadia,') && l.includes('idle>90d'))).toBe(true);
    expect(lines.some((l) => l.includes(',oscar,') && l.includes(`workspace,${ws},owner`))).toBe(true);
    expect(
      (await env.app.inject({ method: 'GET', url: '/api/v1/access-reviews/export', headers: s.nadia!.headers }))
        .statusCode,
    ).toBe(401); // idle session long gone
  });
});
