import fs from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, linkIn, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { tempDir } from '../support/tmp.js';
import { createGpg } from '../support/gpg.js';
import { REDACTED, redactedConfig } from '../../src/console/settings.js';

/**
 * The small API routes the console needs beyond the modules' own: the owner's member picker
 * (`POST /workspaces/:id/member-candidates`), "remind reviewers now", the read-only settings view,
 * and the backup page's escrow keys and restore drills. A whole appliance (SoftHSM2, SQLite, audit
 * trail), a real SMTP server for the reminders; only the clock is fake.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
let ws = '';

beforeAll(async () => {
  env = await openIdentityEnv();
  for (const [name, role] of [
    ['adele', 'admin'],
    ['owen', 'member'],
    ['edith', 'member'],
    ['olivier', 'member'],
    ['olivia', 'member'],
    ['oliver_x', 'member'],
    ['bob', 'backup-operator'],
    ['aude', 'auditor'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
  ws = (await req('owen', 'POST', '/api/v1/workspaces', { name: 'Contrats' })).json().id;
  expect(
    (await req('owen', 'PUT', `/api/v1/workspaces/${ws}/members/${u.edith!.id}`, { role: 'editor' })).statusCode,
  ).toBe(200);
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

async function signInAll(): Promise<void> {
  for (const name of Object.keys(u)) if (name !== 'olive-gone') s[name] = await signIn(env, u[name]!);
}
function req(who: string, method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) {
  return env.app.inject({ method, url, headers: s[who]!.headers, ...(payload ? { payload } : {}) });
}
const auditRows = (action: string) =>
  env.t.appliance.db.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('seq').execute();

describe('member picker: POST /workspaces/:id/member-candidates', () => {
  const look = (who: string, q: string, id = ws) =>
    req(who, 'POST', `/api/v1/workspaces/${id}/member-candidates`, { q });

  it('an owner finds one person by exact user name or e-mail address, never by prefix; id and name only; members marked', async () => {
    const r = await look('owen', 'OLIVIER');
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().users).toEqual([{ userId: u.olivier!.id, username: 'olivier', member: false }]);
    // two letters at a time no longer walk the directory
    for (const q of ['Olivi', 'oliv', 'ol', 'ad', 'adel', 'oliver_'])
      expect((await look('owen', q)).json().users, q).toEqual([]);
    expect((await look('owen', 'olivia@example.test')).json().users).toEqual([
      { userId: u.olivia!.id, username: 'olivia', member: false },
    ]);
    expect((await look('owen', 'OLIVIA@EXAMPLE.TEST')).json().users).toEqual([
      { userId: u.olivia!.id, username: 'olivia', member: false },
    ]);
    expect((await look('owen', 'olivia@example')).json().users).toEqual([]);
    expect((await look('owen', 'edith')).json().users).toEqual([
      { userId: u.edith!.id, username: 'edith', member: true },
    ]);
    expect((await look('owen', '%%')).json().users).toEqual([]);
  });

  it('the search text never travels in the URL: the old GET with ?q= is gone', async () => {
    const r = await env.app.inject({
      method: 'GET',
      url: `/api/v1/workspaces/${ws}/member-candidates?q=olivier`,
      headers: s.owen!.headers,
    });
    expect(r.statusCode).toBe(404);
    expect(r.body).not.toContain(u.olivier!.id);
  });

  it('disabled accounts are not offered', async () => {
    const z = await enrolUser(env, 'olive-gone', 'member');
    expect((await req('adele', 'POST', `/api/v1/users/${z.id}/disable`)).statusCode).toBe(200);
    expect((await look('owen', 'olive-gone')).json().users).toEqual([]);
  });

  it('need-to-know: editors get 403, admins and outsiders the workspace 404; bad queries 400', async () => {
    expect((await look('edith', 'olivia')).statusCode).toBe(403);
    expect((await look('adele', 'olivia')).statusCode).toBe(404);
    expect((await look('olivia', 'olivia')).statusCode).toBe(404);
    expect((await look('owen', 'olivia', '00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
    expect((await look('owen', 'o')).statusCode).toBe(400);
    expect((await look('owen', 'x'.repeat(255))).statusCode).toBe(400);
    expect(
      (
        await env.app.inject({
          method: 'POST',
          url: `/api/v1/workspaces/${ws}/member-candidates`,
          payload: { q: 'olivia' },
        })
      ).statusCode,
    ).toBe(401);
    const denied = (await auditRows('access.denied')).filter((r) => r.actor === `user:${u.edith!.id}`);
    expect(denied.some((r) => r.reason === 'ROLE_TOO_LOW')).toBe(true);
  });

  it('every lookup is audited with ids (found or not), never the typed text', async () => {
    const before = (await auditRows('user.lookup')).length;
    await look('owen', 'olivia');
    await look('owen', 'nobody-here');
    const rows = await auditRows('user.lookup');
    expect(rows.length).toBe(before + 2);
    const [hit, miss] = rows.slice(-2);
    expect(hit!.actor).toBe(`user:${u.owen!.id}`);
    expect(hit!.reason).toBe('FOUND');
    expect(JSON.stringify(hit)).toContain(u.olivia!.id);
    expect(miss!.reason).toBe('NOT_FOUND');
    for (const r of [hit, miss]) {
      expect(JSON.stringify(r)).not.toContain('olivia"');
      expect(JSON.stringify(r)).not.toContain('nobody-here');
    }
    expect(hit!.request_id).toBeTruthy();
  });

  it('is rate-limited per person (auth.directory.lookupsPerHour, 30), from any address: then 429 with Retry-After, audited', async () => {
    let last = 0;
    let retryAfter: string | undefined;
    let n = 0;
    for (; n < 40 && last !== 429; n++) {
      const r = await env.app.inject({
        method: 'POST',
        url: `/api/v1/workspaces/${ws}/member-candidates`,
        payload: { q: 'zz' },
        headers: s.owen!.headers,
        remoteAddress: `203.0.113.${n + 1}`,
      });
      last = r.statusCode;
      retryAfter = r.headers['retry-after'] as string | undefined;
    }
    expect(last).toBe(429);
    expect(n).toBeLessThanOrEqual(31);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect((await auditRows('user.lookup')).some((r) => r.outcome === 'denied' && r.reason === 'THROTTLED')).toBe(true);
  });
});

describe('access reviews: POST /access-reviews/:id/remind', () => {
  it('an admin reminds every reviewer with pending items by e-mail, at most once an hour; audited; others refused', async () => {
    const start = await req('adele', 'POST', '/api/v1/access-reviews');
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json().id as string;
    expect((await req('owen', 'POST', `/api/v1/access-reviews/${id}/remind`)).statusCode).toBe(403);
    expect((await req('aude', 'POST', `/api/v1/access-reviews/${id}/remind`)).statusCode).toBe(403);
    expect(
      (await req('adele', 'POST', '/api/v1/access-reviews/00000000-0000-4000-8000-000000000000/remind')).statusCode,
    ).toBe(404);
    const sentBefore = env.smtp.messages.length;
    const r = await req('adele', 'POST', `/api/v1/access-reviews/${id}/remind`);
    expect(r.statusCode, r.body).toBe(200);
    // the owner of the workspace (memberships) and the admin (roles, tokens)
    expect(r.json()).toEqual({ reviewers: 2, reminded: 2 });
    const owner = await env.smtp.next('owen@example.test', 30_000);
    expect(owner.raw).toMatch(/access review is waiting/);
    await env.smtp.next('adele@example.test', 30_000);
    expect(env.smtp.messages.length - sentBefore).toBe(2);
    // a second click at once is refused, without mail
    const again = await req('adele', 'POST', `/api/v1/access-reviews/${id}/remind`);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('REMINDED_RECENTLY');
    expect(env.smtp.messages.length - sentBefore).toBe(2);
    env.clock.advance(61 * 60_000);
    await signInAll(); // the sessions' idle timeout passed with the clock
    expect((await req('adele', 'POST', `/api/v1/access-reviews/${id}/remind`)).json()).toEqual({
      reviewers: 2,
      reminded: 2,
    });
    const audited = (await auditRows('access.review.remind')).filter((a) => a.outcome === 'success');
    expect(audited).toHaveLength(2);
    expect(audited[0]!.actor).toBe(`user:${u.adele!.id}`);
    // the items are decided: nothing is pending, nobody is mailed. Nobody reviews their own access:
    // owen's own membership (sole owner) goes to adele, adele's own role to another admin
    const items = (await req('adele', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      id: string;
      kind: string;
      self: boolean;
    }[];
    for (const i of items.filter((x) => !x.self))
      await req('adele', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' });
    const owned = (await req('owen', 'GET', `/api/v1/access-reviews/${id}/items`)).json().items as {
      id: string;
      self: boolean;
    }[];
    for (const i of owned.filter((x) => !x.self))
      await req('owen', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' });
    u.adrien = await enrolUser(env, 'adrien', 'admin');
    s.adrien = await signIn(env, u.adrien);
    for (const i of items.filter((x) => x.self))
      expect(
        (await req('adrien', 'POST', `/api/v1/access-reviews/${id}/items/${i.id}`, { decision: 'confirm' })).statusCode,
      ).toBe(200);
    // every item decided: the campaign closed, and a closed campaign is not reminded
    const closed = await req('adele', 'POST', `/api/v1/access-reviews/${id}/remind`);
    expect(closed.statusCode).toBe(409);
    expect(closed.json().error.code).toBe('REVIEW_CLOSED');
  });
});

describe('invitations with a mail server: the link goes to the person, never in the reply', () => {
  it('POST /users and POST /users/:id/invite answer mailed: true without the link; the mail holds it', async () => {
    const r = await req('adele', 'POST', '/api/v1/users', {
      username: 'nina',
      email: 'nina@example.test',
      role: 'member',
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ mailed: true });
    expect(r.json().enrolUrl).toBeUndefined();
    const first = linkIn((await env.smtp.next('nina@example.test', 30_000)).raw);
    env.secrets.add(first.split('/').pop()!);
    expect(r.body).not.toContain(first.split('/').pop()!);
    const again = await req('adele', 'POST', `/api/v1/users/${r.json().user.id}/invite`);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ expiresAt: expect.any(String), mailed: true });
    const second = linkIn((await env.smtp.next('nina@example.test', 30_000)).raw);
    env.secrets.add(second.split('/').pop()!);
    expect(second).not.toBe(first);
    // the newer link voids the older one (R1)
    const old = await env.app.inject({
      method: 'POST',
      url: '/api/v1/auth/enrol',
      payload: { token: first, password: 'Brisk-Lantern-55-marmots' },
    });
    expect(old.statusCode).toBe(410);
  });
});

describe('settings: GET /settings', () => {
  it('admins read the effective configuration with every secret redacted; audited; others refused', async () => {
    const r = await req('adele', 'GET', '/api/v1/settings');
    expect(r.statusCode, r.body).toBe(200);
    const j = r.json() as {
      editable: { key: string; set?: boolean }[];
      sections: Record<string, Record<string, unknown>>;
    };
    expect(j.editable.map((f) => f.key)).toContain('mail.smtp.host');
    expect(j.editable.find((f) => f.key === 'mail.sms.authHeader')).toMatchObject({ set: true });
    expect(Object.keys(j.sections)).toEqual(
      expect.arrayContaining(['http', 'keys', 'auth', 'mail', 'backup', 'audit', 'site']),
    );
    expect(j.sections.keys!.pinFile).toBe(REDACTED);
    expect((j.sections.auth as { password: { minLength: number } }).password.minLength).toBe(
      env.t.appliance.config.auth.password.minLength,
    );
    expect(j.sections.keys!.kekLabel).toBe(env.t.appliance.config.keys.kekLabel);
    const mail = j.sections.mail as { smtp: { host: string }; sms: { authHeaderFile: string; url: string } };
    expect(mail.smtp.host).toBe('127.0.0.1');
    expect(mail.sms.authHeaderFile).toBe(REDACTED);
    // no secret file's path, and no secret, anywhere in the answer
    const cfg = env.t.appliance.config;
    expect(r.body).not.toContain(cfg.keys.pinFile);
    expect(r.body).not.toContain(cfg.tls.keyFile);
    expect(r.body).not.toContain('sms-gateway-secret');
    expect(r.body).not.toContain(fs.readFileSync(cfg.keys.pinFile, 'utf8').trim());
    for (const who of ['owen', 'bob', 'aude']) expect((await req(who, 'GET', '/api/v1/settings')).statusCode).toBe(403);
    expect((await auditRows('settings.read')).map((a) => a.actor)).toEqual([`user:${u.adele!.id}`]);
  });

  it('redaction is by key wherever it sits, and URLs lose their credentials', () => {
    const fake = {
      version: 1,
      applianceId: 'x',
      dataDir: '/d',
      database: { type: 'postgres', passwordFile: '/run/pg-pass', host: 'db' },
      mail: { sms: { url: 'https://u:hunter2@sms.example/send?token=abc123', bodyTemplate: 'key=s3cr3t&to={{to}}' } },
      tls: { keyPassphraseFile: '/k', keyFile: '/key.pem', certFile: '/cert.pem' },
      keys: { tokenLabel: 'coffre', pinFile: undefined },
      auth: { password: { minLength: 12 } },
    };
    const out = JSON.stringify(redactedConfig(fake as never));
    for (const secret of ['/run/pg-pass', 'hunter2', 'abc123', 's3cr3t', '/key.pem', '"/k"'])
      expect(out).not.toContain(secret);
    expect(out).toContain('"tokenLabel":"coffre"');
    expect(out).toContain('"certFile":"/cert.pem"');
    expect(out).toContain('"pinFile":null');
    // the password policy is not a secret: its values are shown
    expect(out).toContain('"password":{"minLength":12}');
  });
});

describe('settings: PUT /settings cannot relax the sign-in policies', () => {
  const put = (values: Record<string, unknown>) =>
    env.app.inject({
      method: 'PUT',
      url: '/api/v1/settings',
      headers: s.adele!.headers,
      payload: { values },
    });
  const file = () => path.join(env.t.appliance.config.dataDir, 'config.json');

  it('an admin session may tighten the password and second-factor policies, never relax them; nothing written', async () => {
    await signInAll();
    const before = fs.readFileSync(file(), 'utf8');
    // a stolen admin session tries to switch off the second factor and ease the password rules
    const r = await put({
      'auth.mfa.requiredRoles': ['member'],
      'auth.password.minClasses': 1,
      'mail.smtp.port': 2526,
    });
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json().error.code).toBe('SETTINGS_INVALID');
    expect(r.json().error.details.problems).toEqual(
      expect.arrayContaining([
        { field: 'auth.mfa.requiredRoles', rule: 'weaker' },
        { field: 'auth.password.minClasses', rule: 'weaker' },
      ]),
    );
    expect(fs.readFileSync(file(), 'utf8')).toBe(before);
    expect(await auditRows('settings.change')).toHaveLength(0);

    // stricter is fine; going back from the saved stricter value (or removing it) is relaxing
    const up = await put({ 'auth.password.minLength': 14 });
    expect(up.statusCode, up.body).toBe(200);
    for (const back of [12, null]) {
      const down = await put({ 'auth.password.minLength': back });
      expect(down.statusCode, down.body).toBe(400);
      expect(down.json().error.details.problems).toEqual([{ field: 'auth.password.minLength', rule: 'weaker' }]);
    }
    expect(JSON.parse(fs.readFileSync(file(), 'utf8')).auth.password.minLength).toBe(14);
    // every role keeps its second factor; adding one that had none is allowed
    expect(
      (await put({ 'auth.mfa.requiredRoles': [...env.t.appliance.config.auth.mfa.requiredRoles] })).statusCode,
    ).toBe(200);
    expect((await auditRows('settings.change')).map((a) => a.actor)).toEqual([
      `user:${u.adele!.id}`,
      `user:${u.adele!.id}`,
    ]);
  });
});

describe('backup page: GET /backup/escrow and GET /backup/drills', () => {
  it('operators and auditors see escrow keys (who added them) and the latest drills with their RTO', async () => {
    const svc = env.t.appliance.backup;
    expect((await req('bob', 'GET', '/api/v1/backup/drills')).json()).toEqual({ drills: [] });
    const { publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'escrow@example.test' }],
      date: new Date(env.clock.nowMs() - 86_400_000),
      format: 'armored',
    });
    const added = await svc.addEscrow(publicKey, `user:${u.bob!.id}`);
    const esc = await req('aude', 'GET', '/api/v1/backup/escrow');
    expect(esc.statusCode, esc.body).toBe(200);
    expect(esc.json().keys).toEqual([
      expect.objectContaining({
        fingerprint: added.fingerprint,
        userIds: ['<escrow@example.test>'],
        createdBy: `user:${u.bob!.id}`,
        createdByName: 'bob',
      }),
    ]);
    expect(esc.body).not.toContain('BEGIN PGP');
    // a real backup to a mounted directory, then a real restore drill
    await svc.addTarget(
      {
        name: 'lyon',
        type: 'path',
        url: `file://${tempDir('coffre-console-api-')}`,
        jurisdiction: 'FR',
        lat: 45.764,
        lon: 4.8357,
      },
      'local:test',
    );
    await svc.run({ actor: 'local:test' });
    const drill = await svc.drill({ actor: 'local:test' });
    expect('rtoMs' in drill).toBe(true);
    const d = await req('bob', 'GET', '/api/v1/backup/drills');
    expect(d.statusCode, d.body).toBe(200);
    const [latest] = d.json().drills as {
      ok: boolean;
      rtoMs: number;
      target: string;
      backupId: string;
      documents: number;
    }[];
    expect(latest).toMatchObject({
      ok: true,
      target: 'lyon',
      rtoMs: (drill as { rtoMs: number }).rtoMs,
      backupId: (drill as { backupId: string }).backupId,
    });
    for (const who of ['owen', 'adele']) {
      expect((await req(who, 'GET', '/api/v1/backup/escrow')).statusCode).toBe(403);
      expect((await req(who, 'GET', '/api/v1/backup/drills')).statusCode).toBe(403);
    }
  }, 120_000);
});

describe('backup page: POST /backup/escrow', () => {
  it('an operator adds a gpg-made key (listed, audited by fingerprint); a malformed, private or duplicate key is refused with nothing stored; others get 403', async () => {
    // a real GnuPG key, made the day before the fake clock's "now"
    const gpg = createGpg('cv25519', { at: new Date(env.clock.nowMs() - 86_400_000) });
    try {
      const before = (await req('bob', 'GET', '/api/v1/backup/escrow')).json().keys as { fingerprint: string }[];
      const stored = async () =>
        (await env.t.appliance.db.db.selectFrom('backup_escrow_keys').select('fingerprint').execute())
          .map((r) => r.fingerprint)
          .sort();
      const storedBefore = await stored();
      const auditBefore = (await auditRows('backup.escrow.add')).length;

      // malformed: 400 with the precise reason, nothing stored, the refusal audited without key text
      const bad = await req('bob', 'POST', '/api/v1/backup/escrow', {
        publicKey: gpg.publicKey.replace(/^([A-Za-z0-9+/]{20})[A-Za-z0-9+/]{8}/m, '$1********'),
      });
      expect(bad.statusCode, bad.body).toBe(400);
      expect(bad.json().error).toMatchObject({
        code: 'ESCROW_KEY_REFUSED',
        message: expect.stringMatching(/^not an OpenPGP public key/),
      });
      const priv = await req('bob', 'POST', '/api/v1/backup/escrow', {
        publicKey: gpg.run(['--export-secret-keys', '--armor', gpg.fingerprint]).toString(),
      });
      expect(priv.statusCode, priv.body).toBe(400);
      expect(priv.json().error.message).toMatch(/^this is a PRIVATE key/);
      expect(priv.body).not.toContain('BEGIN PGP');
      expect((await req('bob', 'POST', '/api/v1/backup/escrow', { publicKey: '' })).statusCode).toBe(400);
      expect(await stored()).toEqual(storedBefore);

      // a member, an admin and an auditor are refused; so is a cookie without the CSRF token
      for (const who of ['owen', 'adele', 'aude'])
        expect((await req(who, 'POST', '/api/v1/backup/escrow', { publicKey: gpg.publicKey })).statusCode).toBe(403);
      const noCsrf = await env.app.inject({
        method: 'POST',
        url: '/api/v1/backup/escrow',
        headers: { cookie: s.bob!.cookie, origin: s.bob!.headers.origin! },
        payload: { publicKey: gpg.publicKey },
      });
      expect(noCsrf.statusCode).toBe(403);
      expect(await stored()).toEqual(storedBefore);

      // valid: 202 with a request an admin (another person) approves; then 201-shaped, listed as GET lists it
      const asked = await req('bob', 'POST', '/api/v1/backup/escrow', { publicKey: gpg.publicKey });
      expect(asked.statusCode, asked.body).toBe(202);
      expect(asked.json()).toMatchObject({
        status: 'pending',
        request: {
          kind: 'escrow.add',
          change: { fingerprint: gpg.fingerprint },
          requestedBy: `user:${u.bob!.id}`,
          requestedByName: 'bob',
        },
      });
      expect(asked.body).not.toContain('BEGIN PGP');
      expect(await stored()).toEqual(storedBefore);
      const { id, digest } = asked.json().request as { id: string; digest: string };
      expect((await req('bob', 'POST', `/api/v1/backup/requests/${id}/approve`, { digest })).statusCode).toBe(403);
      const ok = await req('adele', 'POST', `/api/v1/backup/requests/${id}/approve`, { digest });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().request).toMatchObject({
        state: 'applied',
        decidedBy: `user:${u.adele!.id}`,
        decidedByName: 'adele',
      });
      const listed = (await req('aude', 'GET', '/api/v1/backup/escrow')).json().keys as { fingerprint: string }[];
      expect(listed).toHaveLength(before.length + 1);
      expect(listed).toContainEqual({
        fingerprint: gpg.fingerprint,
        userIds: ['Coffre Escrow <escrow@example.fr>'],
        algorithm: 'ecdh curve25519Legacy',
        expiresAt: null,
        createdAt: new Date(env.clock.nowMs()).toISOString(),
        createdBy: `user:${u.bob!.id}`,
        createdByName: 'bob',
      });

      // the same key again: 409 at once, nothing requested
      const dup = await req('bob', 'POST', '/api/v1/backup/escrow', { publicKey: gpg.publicKey });
      expect(dup.statusCode, dup.body).toBe(409);
      expect(dup.json().error).toMatchObject({
        code: 'ESCROW_KEY_EXISTS',
        message: expect.stringContaining(gpg.fingerprint),
      });
      expect((await stored()).length).toBe(storedBefore.length + 1);

      // audited: refusals with their reason, the addition and the duplicate by fingerprint; never the key text
      const rows = (await auditRows('backup.escrow.add')).slice(auditBefore);
      expect(rows.map((r) => [r.outcome, r.reason ?? null])).toEqual([
        ['failure', 'ESCROW_KEY_REFUSED'],
        ['failure', 'ESCROW_KEY_REFUSED'],
        ['success', null],
        ['failure', 'ESCROW_KEY_EXISTS'],
      ]);
      expect(JSON.stringify(rows.slice(2))).toContain(gpg.fingerprint);
      const keyBody = gpg.publicKey.split('\n')[2]!;
      expect(JSON.stringify(rows)).not.toContain(keyBody);
      expect(env.logs.text()).not.toContain(keyBody);
    } finally {
      gpg.close();
    }
  }, 60_000);
});
