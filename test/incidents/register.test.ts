import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';

/**
 * The incident register through the whole appliance (real SoftHSM2, SQLite, audit trail, SMTP
 * server for alerts): life cycle (resolving refused while an action is open), roles played as the
 * attacker (members, backup operators, auditors trying to write), the GDPR 72-hour clock with the
 * injected clock, the report in JSON and CSV, a user's report becoming a draft and an alert, bad
 * input refused with nothing half-written, and every change in the audit trail without its text.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
const MARK = 'Zq7-confidential-incident-text';

beforeAll(async () => {
  env = await openIdentityEnv({
    COFFRE_CFG_monitoring__alerts: JSON.stringify({ email: { to: ['oncall@example.fr'], minSeverity: 'info' } }),
  });
  for (const [name, role] of [
    ['adele', 'admin'],
    ['aude', 'auditor'],
    ['bob', 'backup-operator'],
    ['mia', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
}, 120_000);
afterAll(async () => {
  await env?.close();
});

/** each role from its own loopback address */
const FROM: Record<string, string> = { adele: '127.0.4.1', aude: '127.0.4.2', bob: '127.0.4.3', mia: '127.0.4.4' };
const req = (who: string, method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown) =>
  env.app.inject({
    method,
    url: `/api/v1${url}`,
    headers: s[who]!.headers,
    remoteAddress: FROM[who]!,
    ...(payload !== undefined ? { payload: payload as string } : {}),
  });
/** the fake clock moved past the sessions' idle timeout: sign in again */
async function later(ms: number): Promise<void> {
  env.clock.advance(ms);
  for (const who of Object.keys(u)) s[who] = await signIn(env, u[who]!);
}
const db = () => env.t.appliance.db.db;
const audit = async (action: string) =>
  db().selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();

async function open(title = `Backup target unreachable ${MARK}`, extra: Record<string, unknown> = {}) {
  const r = await req('adele', 'POST', '/incidents', {
    title,
    severity: 'high',
    components: ['backup'],
    message: `first look ${MARK}`,
    ...extra,
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json() as {
    id: string;
    status: string;
    breachClock: { state: string; remainingMs: number; deadline: string } | null;
  };
}

describe('life cycle', { timeout: 60_000 }, () => {
  it('opened, updated, actions added; resolving is refused (409) while one is open and nothing is written; resolved once all are closed', async () => {
    const i = await open();
    expect(i.status).toBe('investigating');
    let r = await req('adele', 'POST', `/incidents/${i.id}/updates`, {
      status: 'identified',
      message: 'the SFTP host key changed',
    });
    expect(r.statusCode, r.body).toBe(201);
    r = await req('adele', 'PATCH', `/incidents/${i.id}`, { rootCause: 'host key rotated without notice' });
    expect(r.statusCode, r.body).toBe(200);
    const a1 = (
      await req('adele', 'POST', `/incidents/${i.id}/actions`, {
        kind: 'corrective',
        description: 'pin the new host key',
      })
    ).json();
    const a2 = (
      await req('adele', 'POST', `/incidents/${i.id}/actions`, {
        kind: 'preventive',
        description: 'host key changes announced a week ahead',
        dueAt: '2026-12-01T00:00:00Z',
      })
    ).json();
    expect([a1.state, a2.kind]).toEqual(['open', 'preventive']);
    r = await req('adele', 'POST', `/incidents/${i.id}/actions/${a1.id}/close`, { outcome: 'pinned' });
    expect(r.json()).toMatchObject({ state: 'closed', closedBy: `user:${u.adele!.id}`, outcome: 'pinned' });
    expect((await req('adele', 'POST', `/incidents/${i.id}/actions/${a1.id}/close`, {})).json().error.code).toBe(
      'INCIDENT_ACTION_CLOSED',
    );

    const before = (await req('adele', 'GET', `/incidents/${i.id}`)).json();
    r = await req('adele', 'POST', `/incidents/${i.id}/updates`, { status: 'resolved', message: 'done' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('INCIDENT_ACTIONS_OPEN');
    expect(r.json().error.message).toMatch(/1 corrective or preventive action/);
    const after = (await req('adele', 'GET', `/incidents/${i.id}`)).json();
    expect(after.status).toBe('identified');
    expect(after.updates).toHaveLength(before.updates.length);
    expect(after.resolvedAt).toBeNull();

    await req('adele', 'POST', `/incidents/${i.id}/actions/${a2.id}/close`, {});
    r = await req('adele', 'POST', `/incidents/${i.id}/updates`, { status: 'resolved', message: 'done' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ status: 'resolved', rootCause: 'host key rotated without notice' });
    expect(r.json().resolvedAt).toBe(new Date(env.clock.nowMs()).toISOString());
    expect(r.json().updates.map((x: { status: string }) => x.status)).toEqual([
      'investigating',
      'identified',
      'resolved',
    ]);
    // a resolved incident takes no new action until reopened
    expect(
      (await req('adele', 'POST', `/incidents/${i.id}/actions`, { kind: 'corrective', description: 'late' })).json()
        .error.code,
    ).toBe('INCIDENT_RESOLVED');
    expect(
      (await req('adele', 'POST', `/incidents/${i.id}/updates`, { status: 'investigating', message: 'it came back' }))
        .statusCode,
    ).toBe(201);
  });

  it('every change is audited with actor, source and ids, never the text', async () => {
    for (const action of [
      'incident.create',
      'incident.status',
      'incident.edit',
      'incident.action.add',
      'incident.action.close',
    ]) {
      const rows = await audit(action);
      expect(rows.length, action).toBeGreaterThan(0);
      expect(rows[0]!.actor, action).toBe(`user:${u.adele!.id}`);
      expect(rows[0]!.source_ip, action).toBe('127.0.4.1');
    }
    const all = await db().selectFrom('audit_events').selectAll().execute();
    expect(JSON.stringify(all)).not.toContain(MARK);
    const targets = await db().selectFrom('audit_targets').selectAll().execute();
    expect(JSON.stringify(targets)).not.toContain(MARK);
  });

  it('roles as the attacker: auditors read but cannot write; members and backup operators see nothing; refusals are 403, not empty lists', async () => {
    const i = await open();
    expect((await req('aude', 'GET', '/incidents')).statusCode).toBe(200);
    expect((await req('aude', 'GET', `/incidents/${i.id}`)).json().title).toContain('Backup target');
    for (const who of ['aude', 'bob', 'mia']) {
      expect((await req(who, 'POST', '/incidents', { title: 'x', severity: 'low' })).statusCode, who).toBe(403);
      expect((await req(who, 'PATCH', `/incidents/${i.id}`, { severity: 'low' })).statusCode, who).toBe(403);
      expect(
        (await req(who, 'POST', `/incidents/${i.id}/updates`, { status: 'resolved', message: 'x' })).statusCode,
        who,
      ).toBe(403);
      expect(
        (await req(who, 'POST', `/incidents/${i.id}/actions`, { kind: 'corrective', description: 'x' })).statusCode,
        who,
      ).toBe(403);
      expect((await req(who, 'PUT', `/incidents/${i.id}/affected`, { users: [] })).statusCode, who).toBe(403);
    }
    for (const who of ['bob', 'mia']) {
      expect((await req(who, 'GET', '/incidents')).statusCode, who).toBe(403);
      expect((await req(who, 'GET', `/incidents/${i.id}`)).statusCode, who).toBe(403);
      expect((await req(who, 'GET', `/incidents/${i.id}/report?format=json`)).statusCode, who).toBe(403);
    }
    expect((await env.app.inject({ method: 'GET', url: '/api/v1/incidents' })).statusCode).toBe(401);
    expect((await req('adele', 'GET', `/incidents/${i.id}`)).json().severity).toBe('high');
  });

  it('bad input: precise codes, nothing half-written', async () => {
    const count = async () =>
      Number(
        (await db()
          .selectFrom('incidents')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirst())!.n,
      );
    const n = await count();
    const bad = async (body: unknown, code: string) => {
      const r = await req('adele', 'POST', '/incidents', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code, JSON.stringify(body)).toBe(code);
    };
    await bad({ title: 'x', severity: 'apocalyptic' }, 'VALIDATION');
    await bad({ title: 'right\u202eleft', severity: 'low' }, 'INCIDENT_INVALID');
    await bad({ title: 'two\nlines', severity: 'low' }, 'INCIDENT_INVALID');
    await bad({ title: '   ', severity: 'low' }, 'INCIDENT_INVALID');
    await bad(
      { title: 'future', severity: 'low', detectedAt: new Date(env.clock.nowMs() + 3_600_000).toISOString() },
      'INCIDENT_INVALID',
    );
    expect(await count()).toBe(n);
    const i = await open();
    const ws = (await req('mia', 'POST', '/workspaces', { name: 'Paie' })).json().id as string;
    let r = await req('adele', 'PUT', `/incidents/${i.id}/affected`, {
      workspaces: [ws, 'no-such-workspace'],
      users: [u.mia!.id],
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('INCIDENT_INVALID');
    expect((await req('adele', 'GET', `/incidents/${i.id}`)).json().affected).toEqual({
      components: ['backup'],
      workspaces: [],
      users: [],
    });
    r = await req('adele', 'PUT', `/incidents/${i.id}/affected`, { workspaces: [ws], users: [u.mia!.id] });
    expect(r.json().affected).toEqual({ components: ['backup'], workspaces: [ws], users: [u.mia!.id] });
    expect((await req('adele', 'GET', '/incidents/00000000-0000-4000-8000-000000000000')).json().error.code).toBe(
      'INCIDENT_NOT_FOUND',
    );
    expect(
      (await req('adele', 'POST', `/incidents/${i.id}/actions/00000000-0000-4000-8000-000000000000/close`, {})).json()
        .error.code,
    ).toBe('INCIDENT_ACTION_NOT_FOUND');
    expect(
      (
        await req('adele', 'POST', `/incidents/${i.id}/updates`, {
          status: 'monitoring',
          message: 'x',
          publicMessage: { en: 'Backups are delayed.' },
        })
      ).json().error.code,
    ).toBe('INCIDENT_INVALID'); // no public title yet
  });
});

describe('personal-data breach: the 72-hour clock and the report', { timeout: 60_000 }, () => {
  it('runs from detection, not from when the incident was written down; overdue past 72 h; notified late says so', async () => {
    const detected = env.clock.nowMs() - 10 * 3_600_000;
    const i = await open(`Laptop lost ${MARK}`, { personalData: true, detectedAt: new Date(detected).toISOString() });
    expect(i.breachClock).toMatchObject({
      state: 'running',
      remainingMs: 62 * 3_600_000,
      deadline: new Date(detected + 72 * 3_600_000).toISOString(),
    });
    await later(61 * 3_600_000);
    expect((await req('aude', 'GET', `/incidents/${i.id}`)).json().breachClock).toMatchObject({
      state: 'running',
      remainingMs: detected + 72 * 3_600_000 - env.clock.nowMs(),
    });
    expect(detected + 72 * 3_600_000 - env.clock.nowMs()).toBeGreaterThan(0);
    await later(2 * 3_600_000);
    expect((await req('aude', 'GET', `/incidents/${i.id}`)).json().breachClock).toMatchObject({
      state: 'overdue',
      remainingMs: detected + 72 * 3_600_000 - env.clock.nowMs(),
    });
    const r = await req('adele', 'PATCH', `/incidents/${i.id}`, {
      authorityNotifiedAt: new Date(env.clock.nowMs()).toISOString(),
      breach: { delayReason: 'the laptop was reported lost on a Friday night' },
    });
    expect(r.json().breachClock).toMatchObject({ state: 'notified-late' });
    // an incident without personal data has no clock
    expect((await open('Disk full')).breachClock).toBeNull();
    // notified in time
    const j = await open(`Mail misdirected ${MARK}`, { personalData: true });
    await later(5 * 3_600_000);
    expect(
      (
        await req('adele', 'PATCH', `/incidents/${j.id}`, {
          authorityNotifiedAt: new Date(env.clock.nowMs()).toISOString(),
        })
      ).json().breachClock.state,
    ).toBe('notified');
  });

  it('the report carries the art. 33 content and the DORA fields, in JSON and in CSV (formula cells neutralised); exports are audited', async () => {
    const i = await open(`Misaddressed export ${MARK}`, { personalData: true });
    const p = await req('adele', 'PATCH', `/incidents/${i.id}`, {
      rootCause: '=HYPERLINK("http://evil")',
      breach: {
        nature: 'confidentiality: a payroll export was mailed to the wrong firm',
        subjectCategories: ['employees'],
        subjectsApprox: 240,
        recordCategories: ['payroll', 'bank details'],
        recordsApprox: 2880,
        consequences: 'fraud risk',
        measures: 'recipient confirmed deletion; affected staff informed',
        contact: 'dpo@example.fr',
      },
      dora: {
        classification: 'major',
        clientsAffected: 0,
        durationMinutes: 90,
        memberStates: ['FR'],
        dataLosses: ['confidentiality'],
        criticalServicesAffected: false,
      },
    });
    expect(p.statusCode, p.body).toBe(200);
    await req('adele', 'POST', `/incidents/${i.id}/actions`, { kind: 'corrective', description: 'recall the message' });
    const j = await req('aude', 'GET', `/incidents/${i.id}/report?format=json`);
    expect(j.statusCode).toBe(200);
    expect(j.headers['content-disposition']).toBe(`attachment; filename="incident-${i.id}.json"`);
    const rep = j.json();
    expect(rep.format).toBe('coffre-incident-report/1');
    expect(rep.gdpr).toMatchObject({
      personalDataBreach: true,
      subjectsApprox: 240,
      recordsApprox: 2880,
      subjectCategories: ['employees'],
      recordCategories: ['payroll', 'bank details'],
      likelyConsequences: 'fraud risk',
      clock: 'running',
    });
    expect(rep.dora).toMatchObject({
      classification: 'major',
      durationMinutes: 90,
      memberStates: ['FR'],
      dataLosses: ['confidentiality'],
      measures: ['recall the message'],
    });
    const c = await req('aude', 'GET', `/incidents/${i.id}/report?format=csv`);
    expect(c.headers['content-type']).toMatch(/^text\/csv/);
    const lines = c.body.split('\r\n');
    expect(lines[0]).toBe('field,value');
    expect(lines).toContain('gdpr.subjectsApprox,240');
    expect(lines).toContain('gdpr.recordCategories.1,bank details');
    expect(lines).toContain('dora.classification,major');
    expect(lines).toContain(`incident.rootCause,"'=HYPERLINK(""http://evil"")"`);
    const ex = await audit('incident.export');
    expect(ex.slice(-2).map((e) => [e.actor, e.reason])).toEqual([
      [`user:${u.aude!.id}`, 'JSON'],
      [`user:${u.aude!.id}`, 'CSV'],
    ]);
  });
});

describe('any user reports a suspected incident', { timeout: 60_000 }, () => {
  it('a member reports: a draft for the admins, an alert (mailed), audited; the member cannot read the register', async () => {
    const r = await req('mia', 'POST', '/incidents/report', {
      title: 'Strange e-mail asking for my password',
      description: `It links to a copy of the sign-in page ${MARK}`,
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().status).toBe('draft');
    const id = r.json().id as string;
    const drafts = (await req('adele', 'GET', '/incidents?status=draft')).json().incidents as {
      id: string;
      createdBy: string;
    }[];
    expect(drafts.find((d) => d.id === id)).toMatchObject({ createdBy: `user:${u.mia!.id}` });
    expect((await req('adele', 'GET', `/incidents/${id}`)).json().updates[0].message).toContain(MARK);
    const alert = await db()
      .selectFrom('alerts')
      .selectAll()
      .where('kind', '=', 'incident.reported')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(alert.targets!)).toEqual({ incident: id, actor: `user:${u.mia!.id}` });
    expect(alert.message).not.toContain(MARK);
    await env.t.appliance.monitoring.alerter.settle();
    expect(env.smtp.messages.some((m) => m.raw.includes('incident.reported'))).toBe(true);
    expect((await audit('incident.report')).at(-1)).toMatchObject({ actor: `user:${u.mia!.id}`, outcome: 'success' });
    expect((await req('mia', 'GET', `/incidents/${id}`)).statusCode).toBe(403);
    // the admin takes it in hand; a draft cannot be re-drafted once taken
    expect(
      (
        await req('adele', 'POST', `/incidents/${id}/updates`, {
          status: 'investigating',
          message: 'phishing campaign',
        })
      ).statusCode,
    ).toBe(201);
    expect(
      (await req('adele', 'POST', `/incidents/${id}/updates`, { status: 'draft', message: 'x' })).json().error.code,
    ).toBe('INCIDENT_INVALID');
  });
});
