import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, totpNow, type IdentityEnv } from './support.js';
import { enrolUser, signIn, tokenFor, uniquePassword, type Enrolled, type Signed } from './helpers.js';
import { alerts, audit, call, takeOver } from './attack.js';

/**
 * Identity and access under attack by insiders, through the real HTTPS API, on a default install
 * (no mail server): an admin reaching a workspace through a pending invitee (Z6), look-alike names
 * (P8), the second factor for every role (M4), resets an admin starts but cannot use, two-admin
 * recovery. The same with a mail server and a relaxed second factor: admin-mail.test.ts.
 */
let bare: IdentityEnv;

beforeAll(async () => {
  bare = await openIdentityEnv({ COFFRE_CFG_mail: '{}' }, { listen: true });
}, 120_000);
afterAll(async () => {
  if (!bare) return;
  expectNoSecretsLogged(bare);
  await bare.close();
});

describe('Z6: no admin gets a usable credential for an account that holds memberships', () => {
  it('attack: owner adds a pending invitee, the admin re-invites (no mail server), enrols as them and reads: refused at every step', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'ada', 'admin'));
    const ownerU = await enrolUser(bare, 'olga', 'member');
    const owner = await signIn(bare, ownerU);
    const ws = (await call(bare, 'POST', '/workspaces', { as: owner, json: { name: 'Fusion Beta' } })).json()
      .id as string;
    expect(
      (await call(bare, 'POST', `/workspaces/${ws}/folders`, { as: owner, json: { name: 'Board minutes' } })).status,
    ).toBe(201);

    // the admin invites someone; with no mail server the link comes back to the admin
    const inv = await call(bare, 'POST', '/users', {
      as: admin,
      json: { username: 'ivan', email: 'ivan@example.test', role: 'member' },
    });
    expect(inv.status, inv.body).toBe(201);
    expect(inv.json().mailed).toBe(false);
    const ivan = inv.json().user.id as string;
    bare.secrets.add(inv.json().enrolUrl.split('/').pop());
    // 1. the owner cannot add a person who has not enrolled yet
    const add = await call(bare, 'PUT', `/workspaces/${ws}/members/${ivan}`, { as: owner, json: { role: 'viewer' } });
    expect(add.status, add.body).toBe(409);
    expect(add.json().error.code).toBe('USER_NOT_ENROLLED');
    // 2. a membership from before this rule (written directly) is stripped by the re-issue, and the owner is alerted
    await bare.t.appliance.db.db
      .insertInto('workspace_members')
      .values({
        workspace_id: ws,
        user_id: ivan,
        role: 'viewer',
        added_at: bare.clock.nowMs(),
        added_by: `user:${ownerU.id}`,
      })
      .execute();
    const again = await call(bare, 'POST', `/users/${ivan}/invite`, { as: admin });
    expect(again.status, again.body).toBe(200);
    const link = again.json().enrolUrl as string;
    bare.secrets.add(link.split('/').pop()!);
    expect(
      await bare.t.appliance.db.db.selectFrom('workspace_members').selectAll().where('user_id', '=', ivan).execute(),
    ).toEqual([]);
    const al = await alerts(bare, 'auth.admin_credential');
    expect(al.length).toBe(1);
    expect(JSON.parse(al[0]!.targets!)).toMatchObject({ user: ivan, workspaces: ws, owners: ownerU.id });
    expect((await audit(bare, 'user.reinvite')).at(-1)!.targets).toContain(ws);
    // 3. the admin enrols as ivan and signs in: nothing of the workspace is reachable
    const as = await takeOver(bare, link, 'ivan');
    expect(as.status).toBe(200);
    expect((await call(bare, 'GET', '/workspaces', { as: as.session })).json().workspaces).toEqual([]);
    expect((await call(bare, 'GET', `/workspaces/${ws}`, { as: as.session })).status).toBe(404);
    const folders = await call(bare, 'GET', `/workspaces/${ws}/folders`, { as: as.session });
    expect(folders.status).toBe(404);
    expect(folders.body).not.toContain('Board minutes');
  });

  it('an account that has enrolled or signed in never gets a new enrolment link', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'adam', 'admin'));
    const m = await enrolUser(bare, 'marc', 'member');
    const r = await call(bare, 'POST', `/users/${m.id}/invite`, { as: admin });
    expect(r.status).toBe(409);
    expect(r.json().error.code).toBe('USER_NOT_INVITED');
    expect(r.body).not.toMatch(/enrol\//);
    // disabled then enabled: still the user's own account
    expect((await call(bare, 'POST', `/users/${m.id}/disable`, { as: admin })).status).toBe(200);
    expect((await call(bare, 'POST', `/users/${m.id}/enable`, { as: admin })).status).toBe(200);
    expect((await call(bare, 'POST', `/users/${m.id}/invite`, { as: admin })).status).toBe(409);
  });
});

describe('P8: look-alike user names and invisible characters in names', () => {
  it('a user name whose UTS #39 skeleton matches an existing one is refused (Cyrillic а, dotless ı, digits)', async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'root-admin', 'admin'));
    const inv = (username: string) =>
      call(bare, 'POST', '/users', {
        as: admin,
        json: { username, email: `${Math.random().toString(36).slice(2)}@example.test`, role: 'member' },
      });
    const first = await inv('admin');
    expect(first.status, first.body).toBe(201);
    bare.secrets.add(first.json().enrolUrl.split('/').pop());
    for (const lookAlike of ['\u0430dmin', 'adm\u0131n', 'ADMIN', 'ad\u217Fin', 'аdmіn']) {
      const r = await inv(lookAlike);
      expect(r.status, lookAlike).toBe(409);
      expect(r.json().error.code).toBe('USERNAME_TAKEN');
    }
    const other = await inv('admins');
    expect(other.status).toBe(201);
    bare.secrets.add(other.json().enrolUrl.split('/').pop());
    const users = await bare.t.appliance.db.db.selectFrom('users').select('username').execute();
    expect(users.filter((u) => /^.dm.n$/i.test(u.username.normalize('NFKC')))).toHaveLength(1);
  });

  it('document, folder and workspace names refuse invisible format characters', async () => {
    const o = await signIn(bare, await enrolUser(bare, 'nadia', 'member'));
    const bad = [
      '\u200b',
      '\u200d',
      '\u200e',
      '\u200f',
      '\u2060',
      '\u2064',
      '\ufeff',
      '\u061c',
      '\u202e',
      '\u2066',
      '\u2069',
    ];
    for (const c of bad) {
      const r = await call(bare, 'POST', '/workspaces', { as: o, json: { name: `Pay${c}roll` } });
      expect(r.status, `U+${c.codePointAt(0)!.toString(16)}`).toBe(400);
    }
    const ws = (await call(bare, 'POST', '/workspaces', { as: o, json: { name: 'Payroll' } })).json().id as string;
    for (const c of bad) {
      const f = await call(bare, 'POST', `/workspaces/${ws}/folders`, { as: o, json: { name: `2026${c}` } });
      expect(f.status, `U+${c.codePointAt(0)!.toString(16)}`).toBe(400);
      expect(f.json().error.code).toBe('INVALID_NAME');
    }
    const doc = await bare.https('POST', `/api/v1/workspaces/${ws}/documents`, {
      headers: {
        ...o.headers,
        'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent('invoice\u200b.pdf')}`,
        'content-type': 'application/octet-stream',
        'content-length': '1',
      },
      body: Buffer.from('x'),
    });
    expect(doc.statusCode, doc.body).toBe(400);
    expect(JSON.parse(doc.body).error.code).toBe('INVALID_NAME');
    expect(
      (await bare.t.appliance.db.db.selectFrom('vault_folders').selectAll().where('workspace_id', '=', ws).execute())
        .length,
    ).toBe(0);
  });
});

describe('M4: a second factor for every role by default', () => {
  it('members and auditors enrol with TOTP and cannot sign in with a password alone', async () => {
    for (const [name, role] of [
      ['maya', 'member'],
      ['aurore', 'auditor'],
    ] as const) {
      const u: Enrolled = await enrolUser(bare, name, role);
      expect(u.totp, role).toBeDefined();
      const r = await call(bare, 'POST', '/auth/login', {
        json: { username: name, password: u.password, issue: 'token' },
      });
      expect(r.status).toBe(200);
      expect(r.json().status).toBe('mfa_required');
      expect(r.body).not.toMatch(/cft_/);
      bare.secrets.add(r.json().challenge);
    }
  });
});

describe('password recovery without a mail server; admins start resets they cannot use', () => {
  it('"forgot password" tells the truth about delivery (the same answer for every account)', async () => {
    for (const username of ['maya', 'nobody-at-all']) {
      const r = await call(bare, 'POST', '/auth/password/forgot', { json: { username } });
      expect(r.status).toBe(202);
      expect(r.json()).toEqual({ status: 'accepted', delivery: 'none' });
    }
  });

  it("an admin-started reset (no mail): the admin gets a link that only the user's own second factor completes; owners alerted; 5 wrong codes void it", async () => {
    const admin = await signIn(bare, await enrolUser(bare, 'abel', 'admin'));
    const owner = await enrolUser(bare, 'odile', 'member');
    const so = await signIn(bare, owner);
    const user = await enrolUser(bare, 'ursule', 'member');
    const ws = (await call(bare, 'POST', '/workspaces', { as: so, json: { name: 'Legal' } })).json().id as string;
    expect(
      (await call(bare, 'PUT', `/workspaces/${ws}/members/${user.id}`, { as: so, json: { role: 'viewer' } })).status,
    ).toBe(200);
    const t = await tokenFor(bare, user);
    const hashOf = async () =>
      (
        await bare.t.appliance.db.db
          .selectFrom('users')
          .select('password_hash')
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow()
      ).password_hash;
    const hash0 = await hashOf();
    const start = async () => {
      const r = await call(bare, 'POST', `/users/${user.id}/reset`, { as: admin });
      expect(r.status, r.body).toBe(200);
      expect(r.json()).toMatchObject({ mailed: false, codeRequired: true });
      bare.secrets.add(r.json().resetUrl.split('/').pop());
      return r.json().resetUrl as string;
    };
    const link = await start();
    const pw = uniquePassword();
    bare.secrets.add(pw);
    // the admin, holding the link, cannot complete it
    const noCode = await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw } });
    expect(noCode.status).toBe(401);
    expect(noCode.json().error.code).toBe('CODE_REQUIRED');
    for (let i = 0; i < 5; i++)
      expect(
        (
          await call(bare, 'POST', '/auth/password/reset', {
            json: { token: link, password: pw, code: String(100000 + i) },
          })
        ).status,
      ).toBe(401);
    bare.clock.advance(30_000);
    expect(
      (
        await call(bare, 'POST', '/auth/password/reset', {
          json: { token: link, password: pw, code: totpNow(user.totp!, bare.clock) },
        })
      ).status,
    ).toBe(410);
    expect(await hashOf()).toBe(hash0);
    expect((await call(bare, 'GET', '/auth/me', { as: t })).status).toBe(200);
    // a fresh link, completed by the user with their own code: the password changes, tokens die
    const link2 = await start();
    bare.clock.advance(30_000);
    const done = await call(bare, 'POST', '/auth/password/reset', {
      json: { token: link2, password: pw, code: totpNow(user.totp!, bare.clock) },
    });
    expect(done.status, done.body).toBe(200);
    expect((await call(bare, 'GET', '/auth/me', { as: t })).status).toBe(401);
    const al = (await alerts(bare, 'auth.admin_credential')).map(
      (a) => JSON.parse(a.targets!) as Record<string, string>,
    );
    expect(al.some((a) => a.user === user.id && a.owners === owner.id)).toBe(true);
    expect((await audit(bare, 'auth.reset.admin')).length).toBe(2);
    // an admin cannot reset themselves this way
    expect(
      (
        await call(
          bare,
          'POST',
          `/users/${(await call(bare, 'GET', '/auth/me', { as: admin })).json().user.id}/reset`,
          { as: admin },
        )
      ).status,
    ).toBe(409);
  });

  it('a user who lost both password and second factor: two different admins, each recorded', async () => {
    const a1 = await signIn(bare, await enrolUser(bare, 'anouk', 'admin'));
    const a2 = await signIn(bare, await enrolUser(bare, 'armand', 'admin'));
    const u = await enrolUser(bare, 'lucie', 'member');
    const first = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a1 });
    expect(first.status, first.body).toBe(200);
    expect(first.json()).toEqual({ status: 'requested' });
    const same = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a1 });
    expect(same.status).toBe(409);
    expect(same.json().error.code).toBe('SAME_ADMIN');
    const second = await call(bare, 'POST', `/users/${u.id}/recovery`, { as: a2 });
    expect(second.status, second.body).toBe(200);
    expect(second.json().status).toBe('approved');
    const link = second.json().resetUrl as string;
    bare.secrets.add(link.split('/').pop()!);
    const pw = uniquePassword();
    bare.secrets.add(pw);
    const done = await call(bare, 'POST', '/auth/password/reset', { json: { token: link, password: pw } });
    expect(done.status, done.body).toBe(200);
    const secret = done.json().totp.secret as string;
    bare.secrets.add(secret);
    for (const c of done.json().recoveryCodes as string[]) bare.secrets.add(c);
    expect(secret).not.toBe(u.totp);
    // the new factor is the one that works now
    const s = await signIn(bare, { ...u, password: pw, totp: secret });
    expect((await call(bare, 'GET', '/auth/me', { as: s })).status).toBe(200);
    const idOf = async (x: Signed) =>
      `user:${(await call(bare, 'GET', '/auth/me', { as: x })).json().user.id as string}`;
    expect((await audit(bare, 'auth.recovery.request')).map((r) => r.actor)).toContain(await idOf(a1));
    expect((await audit(bare, 'auth.recovery.approve')).find((r) => r.outcome === 'success')!.actor).toBe(
      await idOf(a2),
    );
    expect((await audit(bare, 'auth.recovery.approve')).filter((r) => r.outcome === 'success')).toHaveLength(1);
  });
});
