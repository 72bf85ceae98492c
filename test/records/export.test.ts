import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { runCli, startServe } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';

/**
 * One-request export of a workspace and its import into another installation (a second data dir
 * and HSM token on the same machine): every document, version, name, tag, description and folder
 * comes back with equal digests; the archive checks with stock tar, sha256sum and openssl; owners
 * only; a damaged archive imports nothing.
 */
let a: VaultEnv;
/** the second installation: its own data dir and SoftHSM2 token, served by `coffre serve` */
let b: { url: string; ca: string; dataDir: string; stop(): Promise<void> };
let owner: User;
let editor: User;
let outsider: User;
let admin: User;
let target: { token: string };
let ws: string;
let work: string;
const big = crypto.randomBytes(5 * 1024 * 1024 + 123);

const cliEnv = (e: VaultEnv, u: { token: string }) => ({
  COFFRE_URL: `https://localhost:${e.port}`,
  COFFRE_TOKEN: u.token,
  COFFRE_CA: path.join(e.t.dataDir, 'tls', 'cert.pem'),
});
const bEnv = () => ({ COFFRE_URL: b.url, COFFRE_TOKEN: target.token, COFFRE_CA: b.ca });
const NO_MFA = { COFFRE_CFG_auth__mfa__requiredRoles: '[]' };

/** A fresh installation in a child process: init, serve, a member enrolled and signed in. */
async function secondInstallation(dir: string) {
  const dataDir = path.join(dir, 'second');
  const init = await runCli(['init', '--data-dir', dataDir, '--json'], { env: NO_MFA });
  expect(init.code, init.stderr).toBe(0);
  const ca = (JSON.parse(init.stdout) as { caFile: string }).caFile;
  const server = await startServe(dataDir, 0, NO_MFA);
  const inv = await runCli(
    ['user', 'invite', 'tess', '--email', 'tess@example.test', '--role', 'member', '--json', '--data-dir', dataDir],
    { env: NO_MFA },
  );
  expect(inv.code, inv.stderr).toBe(0);
  const env = { COFFRE_URL: server.url, COFFRE_CA: ca };
  const password = 'Juniper-Harbour-93q';
  const en = await runCli(
    ['user', 'enrol', (JSON.parse(inv.stdout) as { enrolUrl: string }).enrolUrl, '--password-stdin'],
    {
      env,
      input: `${password}\n`,
    },
  );
  expect(en.code, en.stderr).toBe(0);
  const login = await runCli(['login', '--username', 'tess', '--password-stdin', '--json'], {
    env,
    input: `${password}\n`,
  });
  expect(login.code, login.stderr).toBe(0);
  target = { token: (JSON.parse(login.stdout) as { token: string }).token };
  b = {
    url: server.url,
    ca,
    dataDir,
    stop: async () => {
      server.child.kill('SIGTERM');
      await new Promise((r) => server.child.once('exit', r));
    },
  };
}

/** A request to the second installation. */
async function breq(method: string, p: string): Promise<{ status: number; body: Buffer; json(): any }> {
  const res = await fetchTls(b.url, b.ca, method, p, target.token);
  return res;
}

async function folder(e: VaultEnv, u: User, w: string, name: string, parentId: string | null): Promise<string> {
  const r = await e.req('POST', `/api/v1/workspaces/${w}/folders`, { token: u.token, json: { name, parentId } });
  expect(r.status, r.body.toString()).toBe(201);
  return r.json().id;
}

/** Everything a workspace holds, as comparable values (folder paths by name, not ids). */
type Req = (method: string, p: string) => Promise<{ status: number; body: Buffer; json(): any }>;
async function snapshot(req: Req, w: string) {
  const fl = (await req('GET', `/api/v1/workspaces/${w}/folders?parentId=all`)).json().folders as {
    id: string;
    parentId: string | null;
    name: string;
  }[];
  const pathOf = (id: string | null): string => {
    if (id === null) return '/';
    const f = fl.find((x) => x.id === id)!;
    return `${pathOf(f.parentId)}${f.name}/`;
  };
  const list = (await req('GET', `/api/v1/workspaces/${w}/documents?limit=1000`)).json().items as {
    id: string;
  }[];
  const docs = [];
  for (const item of list) {
    const d = (await req('GET', `/api/v1/documents/${item.id}`)).json();
    const versions = [];
    for (const v of [...d.versions].sort((x: { version: number }, y: { version: number }) => x.version - y.version)) {
      const c = await req('GET', `/api/v1/documents/${item.id}/content?version=${v.version}`);
      expect(c.status).toBe(200);
      versions.push({
        version: v.version,
        size: v.size,
        sha256: v.sha256,
        mediaType: v.mediaType,
        downloaded: crypto.createHash('sha256').update(c.body).digest('hex'),
      });
    }
    docs.push({ name: d.name, description: d.description, tags: d.tags, folder: pathOf(d.folderId), versions });
  }
  return {
    folders: fl.map((f) => pathOf(f.id)).sort(),
    documents: docs.sort((x, y) => `${x.folder}${x.name}`.localeCompare(`${y.folder}${y.name}`)),
  };
}

beforeAll(async () => {
  work = tempDir('coffre-export-');
  a = await openVaultEnv(NO_MFA);
  await secondInstallation(work);
  owner = await a.user('olive');
  editor = await a.user('ed');
  outsider = await a.user('otis');
  admin = await a.user('abel', 'admin');
  ws = await a.workspace(owner, 'Dossiers RH');
  await a.addMember(owner, ws, editor, 'editor');
  const contracts = await folder(a, owner, ws, 'Contrats', null);
  const y2026 = await folder(a, owner, ws, '2026 — été', contracts);
  await folder(a, owner, ws, 'Vide', null);
  const r = await a.req('POST', `/api/v1/workspaces/${ws}/documents?folderId=${y2026}&type=application/pdf`, {
    token: owner.token,
    headers: {
      'content-type': 'application/octet-stream',
      ...metaHeaders('Contrat Zoé n°7.pdf', { description: 'signé, "original"', tags: ['rh', 'contrat'] }),
    },
    body: Buffer.from('version one'),
  });
  expect(r.status, r.body.toString()).toBe(201);
  for (const body of ['version two', 'version three, longer'])
    expect(
      (
        await a.req('POST', `/api/v1/documents/${r.json().id}/versions?type=application/pdf`, {
          token: editor.token,
          headers: { 'content-type': 'application/octet-stream' },
          body: Buffer.from(body),
        })
      ).status,
    ).toBe(201);
  await upload(a, owner, ws, 'scan.bin', big);
  await upload(a, owner, ws, '=cmd|calc.csv', Buffer.from('a,b\n1,2\n'));
}, 180_000);
afterAll(async () => {
  await a?.close();
  await b?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('one-request export and import', () => {
  it('owners only: an editor gets 403, an outsider and an admin the 404 of a missing workspace', async () => {
    const get = (u: User) => a.req('GET', `/api/v1/workspaces/${ws}/export`, { token: u.token });
    expect((await get(editor)).status).toBe(403);
    for (const u of [outsider, admin]) {
      const r = await get(u);
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe('WORKSPACE_NOT_FOUND');
    }
  });

  it('export → import into a fresh installation: every folder, name, tag, description, version and digest equal', async () => {
    const file = path.join(work, 'ws.tar');
    const ex = await runCli(['export', '--workspace', ws, '--out', file, '--json'], { env: cliEnv(a, owner) });
    expect(ex.code, ex.stderr).toBe(0);
    expect(JSON.parse(ex.stdout)).toMatchObject({ documents: 3, versions: 5, bytes: big.length + 51 });
    const audited = await a.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['actor', 'outcome'])
      .where('action', '=', 'workspace.export')
      .execute();
    expect(audited).toContainEqual({ actor: expect.stringMatching(/^token:/), outcome: 'success' });

    // open formats, checked with stock tools alone
    const dir = path.join(work, 'x');
    fs.mkdirSync(dir);
    execFileSync('tar', ['-xf', file, '-C', dir]);
    const sums = spawnSync('sha256sum', ['-c', '--quiet', 'manifest.sha256'], { cwd: dir, encoding: 'utf8' });
    expect(sums.status, sums.stdout + sums.stderr).toBe(0);
    execFileSync('openssl', ['x509', '-in', 'seal-cert.pem', '-pubkey', '-noout', '-out', 'pub.pem'], { cwd: dir });
    const v = spawnSync(
      'openssl',
      ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'manifest.json.sig', 'manifest.json'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    expect(v.stdout).toContain('Verified OK');
    const csv = fs.readFileSync(path.join(dir, 'manifest.csv'), 'utf8');
    expect(csv.split('\r\n')[0]).toBe(
      'document_id,version,path,name,size,sha256,media_type,deposited_at,depositor,receipt',
    );
    expect(csv).toContain(`'=cmd|calc.csv`); // no formula for a spreadsheet
    const events = fs
      .readdirSync(path.join(dir, 'audit'))
      .flatMap((f) =>
        fs
          .readFileSync(path.join(dir, 'audit', f), 'utf8')
          .split('\n')
          .filter(Boolean),
      )
      .map((l) => JSON.parse(l));
    expect(events.some((e) => e.action === 'doc.create')).toBe(true);
    // each version's receipt verifies with openssl too
    const receipts = fs
      .readdirSync(path.join(dir, 'documents'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('receipt.json'));
    expect(receipts).toHaveLength(5);
    for (const rp of receipts) {
      const ok = spawnSync(
        'openssl',
        ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', `documents/${rp}.sig`, `documents/${rp}`],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(ok.stdout).toContain('Verified OK');
    }

    const im = await runCli(['import', file, '--json'], { env: bEnv() });
    expect(im.code, im.stderr).toBe(0);
    const got = JSON.parse(im.stdout) as { workspaceId: string; documents: number; versions: number; folders: number };
    expect(got).toMatchObject({ documents: 3, versions: 5, folders: 3 });
    const before = await snapshot((m, p) => a.req(m, p, { token: owner.token }), ws);
    const after = await snapshot(breq, got.workspaceId);
    expect(after).toEqual(before);
    for (const d of after.documents) for (const x of d.versions) expect(x.downloaded).toBe(x.sha256);
    expect(before.documents.find((d) => d.name === 'Contrat Zoé n°7.pdf')).toMatchObject({
      folder: '/Contrats/2026 — été/',
      tags: ['rh', 'contrat'],
      description: 'signé, "original"',
    });
    const names = await breq('GET', `/api/v1/workspaces`);
    expect(JSON.stringify(names.json())).toContain('Dossiers RH');
  }, 180_000);

  it('a damaged archive imports nothing (EXPORT_INVALID, exit 1)', async () => {
    const file = path.join(work, 'ws.tar');
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from('version three, longer'));
    expect(at).toBeGreaterThan(0);
    bytes[at] = bytes[at]! ^ 0x20;
    const bad = path.join(work, 'bad.tar');
    fs.writeFileSync(bad, bytes);
    const before = (await breq('GET', `/api/v1/workspaces`)).body.toString();
    const im = await runCli(['import', bad], { env: bEnv() });
    expect(im.code).toBe(1);
    expect(im.stderr).toMatch(/^EXPORT_INVALID/m);
    expect((await breq('GET', `/api/v1/workspaces`)).body.toString()).toBe(before);
  }, 120_000);
});

describe("one person's export (everything traceable to them)", () => {
  /** the archive extracted, its manifest checked with sha256sum and openssl alone */
  function openArchive(file: string) {
    const dir = fs.mkdtempSync(path.join(work, 'u-'));
    execFileSync('tar', ['-xf', file, '-C', dir]);
    const sums = spawnSync('sha256sum', ['-c', '--quiet', 'manifest.sha256'], { cwd: dir, encoding: 'utf8' });
    expect(sums.status, sums.stdout + sums.stderr).toBe(0);
    execFileSync('openssl', ['x509', '-in', 'seal-cert.pem', '-pubkey', '-noout', '-out', 'pub.pem'], { cwd: dir });
    const verify = (f: string) =>
      spawnSync('openssl', ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', `${f}.sig`, f], {
        cwd: dir,
        encoding: 'utf8',
      }).stdout;
    expect(verify('manifest.json')).toContain('Verified OK');
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    const docs = fs.existsSync(path.join(dir, 'documents'))
      ? fs.readdirSync(path.join(dir, 'documents')).map((d) => JSON.parse(read(`documents/${d}/document.json`)))
      : [];
    const events = fs
      .readdirSync(path.join(dir, 'audit'))
      .flatMap((f) => read(`audit/${f}`).split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { actor: string; action: string; targets?: Record<string, string> });
    return {
      dir,
      read,
      verify,
      docs,
      events,
      user: JSON.parse(read('user.json')),
      manifest: JSON.parse(read('manifest.json')),
    };
  }
  const exportUser = (u: User, id: string, file: string, extra: string[] = []) =>
    runCli(['export', '--user', id, '--out', file, '--json', ...extra], { env: cliEnv(a, u) });

  it('their own: the versions they deposited, with receipts, and their own trail; checkable with openssl', async () => {
    const file = path.join(work, 'ed.tar');
    const ex = await exportUser(editor, editor.id, file);
    expect(ex.code, ex.stderr).toBe(0);
    expect(JSON.parse(ex.stdout)).toMatchObject({ documents: 1, versions: 2 });
    const x = openArchive(file);
    expect(x.user.user).toMatchObject({ id: editor.id, username: editor.username });
    expect(x.user.workspaces).toEqual([{ id: ws, role: 'editor', name: 'Dossiers RH' }]);
    expect(x.docs).toHaveLength(1);
    const doc = x.docs[0];
    expect(doc).toMatchObject({ workspaceId: ws, name: 'Contrat Zoé n°7.pdf', tags: ['rh', 'contrat'] });
    // only the two versions the editor deposited (the owner's first version is not theirs)
    expect(doc.versions.map((v: { version: number }) => v.version)).toEqual([2, 3]);
    for (const v of doc.versions) {
      expect(x.read(v.path)).toBe(v.version === 2 ? 'version two' : 'version three, longer');
      expect(x.verify(v.receipt)).toContain('Verified OK');
    }
    expect(x.read('manifest.csv').split('\r\n')[0]).toMatch(/^workspace_id,document_id,version,/);
    // the trail: what the editor did (under any of their tokens) and what names their account; nobody else's
    const mine = new Set<string>(x.user.user.actorIds);
    expect(x.events.some((e) => e.action === 'doc.version.create' || e.action.startsWith('doc.'))).toBe(true);
    expect(x.events.some((e) => e.action === 'user.archive')).toBe(true);
    for (const e of x.events) expect(mine.has(e.actor) || e.targets?.user === editor.id, JSON.stringify(e)).toBe(true);
    // the owner's big upload never travels in it
    expect(fs.statSync(file).size).toBeLessThan(1024 * 1024);
  }, 60_000);

  it("a workspace owner gets a member's, from the workspaces they own; anyone else the 404 of an unknown user", async () => {
    const file = path.join(work, 'ed-by-owner.tar');
    const ex = await exportUser(owner, editor.id, file);
    expect(ex.code, ex.stderr).toBe(0);
    const x = openArchive(file);
    expect(x.docs.flatMap((d) => d.versions.map((v: { version: number }) => v.version))).toEqual([2, 3]);
    const theirs = new Set<string>(x.user.user.actorIds);
    for (const e of x.events) {
      expect(theirs.has(e.actor), JSON.stringify(e)).toBe(true);
      expect(e.targets?.workspace).toBe(ws);
    }
    // an admin, an outsider, and a mere editor asking for the owner's: the same answer as an unknown id
    const unknown = await a.req('GET', `/api/v1/users/${crypto.randomUUID()}/archive`, { token: editor.token });
    expect(unknown.status).toBe(404);
    for (const [u, id] of [
      [admin, editor.id],
      [outsider, editor.id],
      [editor, owner.id],
      [outsider, admin.id],
    ] as const) {
      const r = await a.req('GET', `/api/v1/users/${id}/archive`, { token: u.token });
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe(unknown.json().error.code);
    }
    const denied = await a.t.appliance.db.db
      .selectFrom('audit_events')
      .select('outcome')
      .where('action', '=', 'user.archive')
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.length).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it('--from/--to bound the deposits and the records; bad flags are usage errors (exit 2)', async () => {
    const later = await exportUser(editor, editor.id, path.join(work, 'later.tar'), ['--from', '2999-01-01']);
    expect(later.code, later.stderr).toBe(0);
    expect(JSON.parse(later.stdout)).toMatchObject({ documents: 0, versions: 0 });
    const x = openArchive(path.join(work, 'later.tar'));
    expect(x.events).toEqual([]);
    expect(x.user).toMatchObject({ from: '2999-01-01T00:00:00.000Z', to: null });
    const before = await exportUser(editor, editor.id, path.join(work, 'before.tar'), [
      '--from',
      '2020-01-01',
      '--to',
      '2020-12-31T23:00:00Z',
    ]);
    expect(JSON.parse(before.stdout)).toMatchObject({ versions: 0 });
    for (const args of [
      ['--workspace', ws, '--user', editor.id],
      ['--workspace', ws, '--from', '2020-01-01'],
      ['--user', editor.id, '--from', 'yesterday'],
      ['--user', editor.id, '--from', '2026-02-01', '--to', '2026-01-01'],
      [],
    ]) {
      const r = await runCli(['export', ...args, '--out', path.join(work, 'never.tar')], { env: cliEnv(a, editor) });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^USAGE/m);
    }
    expect(fs.existsSync(path.join(work, 'never.tar'))).toBe(false);
    // a person's export is not a workspace: import refuses it before touching the appliance
    const im = await runCli(['import', path.join(work, 'ed.tar')], { env: bEnv() });
    expect(im.code).toBe(2);
    expect(im.stderr).toMatch(/^USAGE.*person's export/m);
  }, 90_000);
});

function fetchTls(
  base: string,
  ca: string,
  method: string,
  p: string,
  token: string,
): Promise<{ status: number; body: Buffer; json(): any }> {
  const u = new URL(p, base);
  return new Promise((resolve, reject) => {
    const r = https.request(
      u,
      { method, ca: fs.readFileSync(ca), servername: 'localhost', headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, body, json: () => JSON.parse(body.toString('utf8')) });
        });
      },
    );
    r.on('error', reject);
    r.end();
  });
}
