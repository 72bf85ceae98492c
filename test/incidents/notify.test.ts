import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { decodeBody } from '../support/receivers.js';
import { backupStaleWaitMs, draftFromAlerts } from '../../src/incidents/index.js';

/**
 * Telling the people concerned, through the whole appliance (real SoftHSM2, SQLite, audit trail,
 * a real SMTP server): the in-app banner shown to affected users only and acknowledged (audited),
 * shown again by a newer public update; e-mails of every public update in each recipient's
 * language; the public status page read as an outsider (no cookie) without any internal field;
 * critical alerts opening one draft per ongoing condition.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
/** internal text that must never reach a user, an e-mail or the status page */
const MARK = 'Zq9-internal-only';
let ws = '';

beforeAll(async () => {
  env = await openIdentityEnv();
  for (const [name, role] of [
    ['adele', 'admin'],
    ['mia', 'member'],
    ['max', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
  await env.t.appliance.identity.users.setLanguage(u.max!.id, 'fr');
  const r = await req('mia', 'POST', '/workspaces', { name: 'Contrats' });
  expect(r.statusCode, r.body).toBe(201);
  ws = (r.json() as { id: string }).id;
}, 120_000);
afterAll(async () => {
  await env?.close();
});

const FROM: Record<string, string> = { adele: '127.0.5.1', mia: '127.0.5.2', max: '127.0.5.3' };
const req = (who: string, method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown) =>
  env.app.inject({
    method,
    url: `/api/v1${url}`,
    headers: s[who]!.headers,
    remoteAddress: FROM[who]!,
    ...(payload !== undefined ? { payload: payload as string } : {}),
  });
const ok = async (p: ReturnType<typeof req>, code = 200) => {
  const r = await p;
  expect(r.statusCode, r.body).toBe(code);
  return r.json() as Record<string, unknown>;
};
const banners = async (who: string) =>
  (await ok(req(who, 'GET', '/incidents/banner'))).banners as {
    incidentId: string;
    updateId: number;
    title: string;
    status: string;
    message: { en?: string; fr?: string };
  }[];
const drain = () => env.t.appliance.incidentMail!.drain();

/** an incident with a public title, internal detail everywhere, and what it affects */
async function published(title: string, affected: { workspaces?: string[]; users?: string[] }) {
  const i = (await ok(
    req('adele', 'POST', '/incidents', {
      title: `${title} ${MARK}`,
      severity: 'high',
      personalData: true,
      message: `internal first look ${MARK}`,
      components: ['documents'],
    }),
    201,
  )) as { id: string };
  await ok(
    req('adele', 'PATCH', `/incidents/${i.id}`, {
      publicTitle: title,
      rootCause: `root cause ${MARK}`,
      breach: { nature: `breach nature ${MARK}`, subjectsApprox: 12 },
    }),
  );
  await ok(req('adele', 'PUT', `/incidents/${i.id}/affected`, affected));
  return i.id;
}
const publicUpdate = (id: string, status: string, en: string, fr: string) =>
  ok(
    req('adele', 'POST', `/incidents/${id}/updates`, {
      status,
      message: `internal note ${MARK}`,
      publicMessage: { en, fr },
    }),
    201,
  );

describe('banner and e-mail to the affected users', { timeout: 60_000 }, () => {
  let id = '';
  it('a public update reaches the members of the affected workspace only: banner and e-mail, public text only', async () => {
    id = await published('Documents slow to open', { workspaces: [ws] });
    // no public update yet: no banner
    expect(await banners('mia')).toEqual([]);
    await publicUpdate(
      id,
      'identified',
      'Opening documents is slow; we found why.',
      'L’ouverture est lente ; cause trouvée.',
    );
    await drain();
    const b = await banners('mia');
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ incidentId: id, title: 'Documents slow to open', status: 'identified' });
    expect(JSON.stringify(b)).not.toContain(MARK);
    // max is not a member of the workspace, the admin is not either
    expect(await banners('max')).toEqual([]);
    expect(await banners('adele')).toEqual([]);
    const mail = await env.smtp.next(u.mia!.email);
    const body = decodeBody(mail.raw);
    expect(body).toContain('Opening documents is slow; we found why.');
    expect(body).toContain('Documents slow to open');
    expect(body).toContain(`${env.publicUrl}/status?lang=en`);
    expect(mail.raw + body).not.toContain(MARK);
    expect(env.smtp.messages.filter((m) => m.to === u.max!.email || m.to === u.adele!.email)).toEqual([]);
  });

  it('acknowledged: the banner goes (audited) until the next public update; nobody else can acknowledge it', async () => {
    const [b] = await banners('mia');
    expect((await req('max', 'POST', `/incidents/${id}/ack`, { updateId: b!.updateId })).statusCode).toBe(404);
    expect((await req('mia', 'POST', `/incidents/${id}/ack`, { updateId: b!.updateId + 99 })).statusCode).toBe(404);
    expect((await req('mia', 'POST', `/incidents/${id}/ack`, { updateId: 'x' })).statusCode).toBe(400);
    expect((await req('mia', 'POST', `/incidents/${id}/ack`, { updateId: b!.updateId })).statusCode).toBe(204);
    expect(await banners('mia')).toEqual([]);
    const rows = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'incident.ack')
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.actor).toBe(`user:${u.mia!.id}`);
    // an internal update does not bring it back; a public one does, and is mailed
    await ok(req('adele', 'POST', `/incidents/${id}/updates`, { status: 'monitoring', message: `quiet ${MARK}` }), 201);
    expect(await banners('mia')).toEqual([]);
    await publicUpdate(id, 'monitoring', 'A fix is deployed; we are watching.', 'Correctif déployé ; surveillance.');
    await drain();
    expect((await banners('mia'))[0]).toMatchObject({
      status: 'monitoring',
      message: { en: 'A fix is deployed; we are watching.' },
    });
    expect(decodeBody((await env.smtp.next(u.mia!.email)).raw)).toContain('A fix is deployed; we are watching.');
  });

  it('an incident naming no user and no workspace affects everyone; each e-mail in its recipient’s language', async () => {
    const all = await published('Sign-in unavailable', {});
    await publicUpdate(all, 'investigating', 'Signing in fails for everyone.', 'La connexion échoue pour tous.');
    await drain();
    for (const who of ['mia', 'max', 'adele']) expect((await banners(who)).map((b) => b.incidentId)).toContain(all);
    const fr = decodeBody((await env.smtp.next(u.max!.email)).raw);
    expect(fr).toContain('La connexion échoue pour tous.');
    expect(fr).toContain('Bonjour max');
    expect(fr).toContain('/status?lang=fr');
    expect(fr).not.toContain('Signing in fails');
    const en = decodeBody((await env.smtp.next(u.adele!.email)).raw);
    expect(en).toContain('Signing in fails for everyone.');
    expect(en + fr).not.toContain(MARK);
  });

  it('a user named directly sees it; a user not signed in gets 401', async () => {
    const one = await published('Your export failed', { users: [u.max!.id] });
    await publicUpdate(one, 'identified', 'Your export failed.', 'Votre export a échoué.');
    await drain();
    expect((await banners('max')).map((b) => b.incidentId)).toContain(one);
    expect((await banners('mia')).map((b) => b.incidentId)).not.toContain(one);
    const anon = await env.app.inject({ method: 'GET', url: '/api/v1/incidents/banner' });
    expect(anon.statusCode).toBe(401);
  });
});

describe('the public status page (/status), read as an outsider', { timeout: 60_000 }, () => {
  const outsider = (url: string, headers: Record<string, string> = {}) =>
    env.app.inject({ method: 'GET', url, headers, remoteAddress: '127.0.5.99' });

  it('no sign-in; public title, updates, components and times; no internal field; same strict CSP', async () => {
    // a draft and an incident without public title never appear
    await ok(req('mia', 'POST', '/incidents/report', { title: `suspect ${MARK}`, description: `seen ${MARK}` }), 201);
    await ok(req('adele', 'POST', '/incidents', { title: `hidden ${MARK}`, severity: 'low' }), 201);
    const r = await outsider('/status', { 'accept-language': 'en-GB,en;q=0.9' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-language']).toBe('en');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.body).not.toMatch(/<script|style=|<style/);
    expect(r.body).toContain('Documents slow to open');
    expect(r.body).toContain('A fix is deployed; we are watching.');
    expect(r.body).toContain('Sign-in unavailable');
    expect(r.body).toContain('documents');
    expect(r.body).toContain('Current incidents');
    // nothing internal: no internal message, root cause, breach, user or workspace id, personal-data flag
    expect(r.body).not.toContain(MARK);
    expect(r.body).not.toContain('suspect');
    for (const x of [u.mia!.id, u.max!.id, u.adele!.id, ws, 'personal', 'breach', '@example.test'])
      expect(r.body).not.toContain(x);
    const css = await outsider('/status.css');
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('French from Accept-Language; ?lang= switches; a bad lang is refused', async () => {
    const fr = await outsider('/status', { 'accept-language': 'fr-FR,fr;q=0.9' });
    expect(fr.headers['content-language']).toBe('fr');
    expect(fr.body).toContain('<html lang="fr">');
    expect(fr.body).toContain('Incidents en cours');
    expect(fr.body).toContain('Correctif déployé ; surveillance.');
    expect(fr.body).not.toContain('A fix is deployed');
    const en = await outsider('/status?lang=en', { 'accept-language': 'fr' });
    expect(en.body).toContain('<html lang="en">');
    expect((await outsider('/status?lang=de')).statusCode).toBe(400);
  });

  it('a resolved incident moves to the past section; gone after 30 days', async () => {
    const id = (await banners('mia'))[0]!.incidentId;
    await publicUpdate(
      id,
      'resolved',
      'Resolved: documents open normally.',
      'Résolu : les documents s’ouvrent normalement.',
    );
    const r = await outsider('/status?lang=en');
    const past = r.body.slice(r.body.indexOf('Resolved incidents'));
    expect(past).toContain('Documents slow to open');
    expect(past).toContain('Resolved: documents open normally.');
    env.clock.advance(31 * 86_400_000);
    const later = await outsider('/status?lang=en');
    expect(later.body).not.toContain('Documents slow to open');
    expect(later.body).toContain('Sign-in unavailable');
    env.clock.advance(-31 * 86_400_000);
  });
});

describe('critical alerts open a draft incident', { timeout: 60_000 }, () => {
  it('one draft per ongoing condition; other alerts open none', async () => {
    const a = env.t.appliance;
    await a.monitoring.alerter.raise({ kind: 'audit.chain-broken', severity: 'critical', message: 'chain broken' });
    await a.monitoring.alerter.raise({ kind: 'monitoring.disk', severity: 'warning', message: 'disk filling' });
    const open = async () =>
      (await a.monitoring.alerter.list({ state: 'active' })).map((x) => ({
        id: x.id,
        kind: x.kind,
        severity: x.severity,
        raisedAt: x.raisedAt,
      }));
    const timing = () => ({ now: env.clock.nowMs(), minOpenMs: { 'backup.stale': backupStaleWaitMs(26) } });
    const first = await draftFromAlerts(a.incidents, await open(), 'job:incidents.alert-drafts', timing());
    expect(first).toHaveLength(1);
    // raised again while open: the same alert, no second draft
    await a.monitoring.alerter.raise({ kind: 'audit.chain-broken', severity: 'critical', message: 'chain broken' });
    expect(await draftFromAlerts(a.incidents, await open(), 'job:incidents.alert-drafts', timing())).toEqual([]);
    // no backup: the stale-backup alert (raised at 26 h) opens a draft once the backup is two days old
    await a.monitoring.alerter.raise({
      kind: 'backup.stale',
      severity: 'critical',
      message: 'no backup',
      targets: { target: 't1' },
    });
    expect(await draftFromAlerts(a.incidents, await open(), 'job:incidents.alert-drafts', timing())).toEqual([]);
    env.clock.advance(22 * 3_600_000);
    expect(await draftFromAlerts(a.incidents, await open(), 'job:incidents.alert-drafts', timing())).toHaveLength(1);
    env.clock.advance(-22 * 3_600_000);
    const i = await a.incidents.get(first[0]!);
    expect(i).toMatchObject({ status: 'draft', severity: 'critical', affected: { components: ['audit'] } });
    expect(i.alertId).not.toBeNull();
    // drafts are not public
    const st = await env.app.inject({ method: 'GET', url: '/status' });
    expect(st.body).not.toContain('Audit trail no longer verifies');
  });
});
