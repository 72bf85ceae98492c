import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Sqlite from 'better-sqlite3';
import * as OTPAuth from 'otpauth';
import { runCli } from '../support/cli.js';
import { createGpg, type Gpg } from '../support/gpg.js';
import { startAppliance, type RunningAppliance } from '../console/appliance.js';
import type { PersonExport } from '../../src/privacy/index.js';

/**
 * `coffre user …` personal-data verbs as real processes against a served appliance (real HSM,
 * SQLite, audit trail): export to a zip (written whole or not at all, audited); erasure of a person
 * who signed in, held a token and owned a workspace, after which their marker e-mail and phone,
 * their ciphertexts, blind indexes and wrapped field key are in no file of the data dir (database,
 * write-ahead log, anything else) nor in the server's logs, and the audit trail verifies.
 */
let s: RunningAppliance;
let dir: string;
const marker = `mrk${crypto.randomBytes(8).toString('hex')}`;
const email = `carol.${marker}@example.test`;
const phoneDigits = `61${crypto.randomInt(1_000_000, 9_999_999)}`;
const phone = `+33 ${phoneDigits}`;
const password = `Tangerine-Ladder-${crypto.randomBytes(4).toString('hex')}X`;
let clientEnv: Record<string, string>;
/** what the erasure must leave nowhere: filled in by the erasure test, checked again in the next backup */
const traces: Record<string, string> = {};

beforeAll(async () => {
  s = await startAppliance({ username: 'alice', email: 'alice@example.test' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-privacy-cli-'));
  const inv = await s.cli([
    'user',
    'invite',
    'carol',
    '--email',
    email,
    '--phone',
    phone,
    '--role',
    'member',
    '--json',
  ]);
  expect(inv.code, inv.stderr).toBe(0);
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, s.ca);
  clientEnv = { COFFRE_URL: s.url, COFFRE_CA: caFile };
  // carol enrols, signs in for a token and creates a workspace: she leaves every kind of trace
  const en = await runCli(
    ['user', 'enrol', (JSON.parse(inv.stdout) as { enrolUrl: string }).enrolUrl, '--password-stdin', '--json'],
    { env: clientEnv, input: `${password}\n` },
  );
  expect(en.code, en.stderr).toBe(0);
  const secret = (JSON.parse(en.stdout) as { totp: { secret: string } }).totp.secret;
  const code = OTPAuth.TOTP.generate({
    secret: OTPAuth.Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  });
  const login = await runCli(['login', '--username', 'carol', '--password-stdin', '--json'], {
    env: clientEnv,
    input: `${password}\n${code}\n`,
  });
  expect(login.code, login.stderr).toBe(0);
  clientEnv.COFFRE_TOKEN = (JSON.parse(login.stdout) as { token: string }).token;
  const ws = await runCli(['workspace', 'create', 'Ledger', '--json'], { env: clientEnv });
  expect(ws.code, ws.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await s?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const unzipJson = (f: string) =>
  JSON.parse(execFileSync('unzip', ['-p', f, 'person.json'], { encoding: 'utf8' })) as PersonExport;

describe('coffre user export', () => {
  it('writes the zip, audited as the local operator', async () => {
    const out = path.join(dir, 'carol.zip');
    const r = await s.cli(['user', 'export', 'carol', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { id: string; out: string; bytes: number };
    expect(j.out).toBe(out);
    expect(fs.statSync(out).size).toBe(j.bytes);
    expect((fs.statSync(out).mode & 0o777).toString(8)).toBe('600');
    const p = unzipJson(out);
    expect(p.profile).toMatchObject({
      id: j.id,
      username: 'carol',
      email,
      phone: `+33${phoneDigits}`,
      state: 'active',
    });
    expect(p.audit.map((e) => e.action)).toContain('user.invite');
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
    const again = await s.cli(['user', 'export', '--id', j.id, '--out', path.join(dir, 'by-id.zip'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    // the first export is itself in the person's audit records now
    expect(
      unzipJson(path.join(dir, 'by-id.zip'))
        .audit.filter((e) => e.action === 'user.export')
        .map((e) => e.actor),
    ).toEqual([expect.stringMatching(/^local:/)]);
  });

  it('refuses an existing file, a missing directory and an unknown user (exit 2), writing nothing', async () => {
    const existing = path.join(dir, 'carol.zip');
    const before = fs.readFileSync(existing);
    const r1 = await s.cli(['user', 'export', 'carol', '--out', existing]);
    expect(r1.code).toBe(2);
    expect(fs.readFileSync(existing).equals(before)).toBe(true);
    const r2 = await s.cli(['user', 'export', 'carol', '--out', path.join(dir, 'nope', 'x.zip')]);
    expect(r2.code).toBe(2);
    const r3 = await s.cli(['user', 'export', 'nobody', '--out', path.join(dir, 'nobody.zip')]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/^NOT_FOUND/);
    expect(fs.existsSync(path.join(dir, 'nobody.zip'))).toBe(false);
  });
});

/** Every file under `d`, recursively. */
function files(d: string): string[] {
  return fs
    .readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : e.isFile() ? [path.join(d, e.name)] : []));
}
const needles = (m: string) =>
  [m, m.toLowerCase(), m.toUpperCase()].flatMap((x) => [Buffer.from(x, 'utf8'), Buffer.from(x, 'utf16le')]);
const holds = (b: Buffer, m: string) => needles(m).some((n) => b.includes(n));

describe('coffre user erase', () => {
  it(
    'refuses while a workspace she alone owns is unsettled (exit 2), then erases with --trash; nothing of her is left in the data dir or logs',
    { timeout: 120_000 },
    async () => {
      const dbFile = path.join(s.dataDir, 'coffre.db');
      const db = new Sqlite(fs.existsSync(dbFile) ? dbFile : files(s.dataDir).find((f) => f.endsWith('.db'))!, {
        readonly: true,
        fileMustExist: true,
      });
      const u = db
        .prepare('SELECT id, email_enc, email_index, phone_enc, phone_index FROM users WHERE username_key = ?')
        .get('carol') as Record<string, string>;
      const key = db.prepare('SELECT id, wrapped FROM data_keys WHERE name = ?').get(`field:user.${u.id}`) as {
        id: string;
        wrapped: string;
      };
      db.close();
      expect(u.email_enc).toContain(key.id);
      Object.assign(traces, {
        email: `carol.${marker}`,
        phone: phoneDigits,
        email_enc: u.email_enc!,
        email_index: u.email_index!,
        phone_enc: u.phone_enc!,
        phone_index: u.phone_index!,
        key: key.id,
        wrapped: key.wrapped,
      });
      const found = () =>
        Object.entries(traces).flatMap(([k, m]) =>
          files(s.dataDir)
            .filter((f) => fs.readFileSync(f).includes(Buffer.from(m)))
            .map((f) => `${k} in ${path.relative(s.dataDir, f)}`),
        );
      // the check can fail: before the erasure the ciphertexts and the wrapped key are on disk
      expect(found().length).toBeGreaterThan(0);

      const refused = await s.cli(['user', 'erase', 'carol', '--json']);
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, code: 'ERASE_NEEDS_OWNER' });
      const both = await s.cli(['user', 'erase', 'carol', '--trash', '--transfer-to', 'alice']);
      expect(both.code).toBe(2);

      const r = await s.cli(['user', 'erase', 'carol', '--trash', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        userId: string;
        keyDestroyed: boolean;
        scrubbed: boolean;
        tokensRevoked: number;
        workspacesTrashed: string[];
      };
      expect(out).toMatchObject({ userId: u.id, keyDestroyed: true, scrubbed: true, tokensRevoked: 1 });
      expect(out.workspacesTrashed).toHaveLength(1);

      // her token is dead
      const dead = await runCli(['workspace', 'list', '--json'], { env: clientEnv });
      expect(dead.code).toBe(4);
      // nothing of her anywhere: database, write-ahead log, every other file; server logs; CLI output
      expect(found()).toEqual([]);
      for (const m of [`carol.${marker}`, phoneDigits]) {
        expect(files(s.dataDir).filter((f) => holds(fs.readFileSync(f), m))).toEqual([]);
        expect(holds(Buffer.from(s.logs()), m)).toBe(false);
        expect(holds(Buffer.from(r.stdout + r.stderr), m)).toBe(false);
      }
      // the trail still verifies; the directory shows an erased user
      const v = await s.cli(['audit', 'verify', '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const list = JSON.parse((await s.cli(['user', 'list', '--json'])).stdout) as {
        users: { id: string; username: string; state: string }[];
      };
      expect(list.users.find((x) => x.id === u.id)).toMatchObject({ username: 'erased user', state: 'erased' });
      expect(list.users.some((x) => x.username === 'carol')).toBe(false);
      // by name she is gone; by id she can still be exported (ids and dates only)
      expect((await s.cli(['user', 'erase', 'carol'])).code).toBe(2);
      const again = await s.cli(['user', 'erase', '--id', u.id!, '--trash']);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/^USER_ERASED/);
    },
  );

  it(
    'the next backup (decrypted with the escrow key by stock GnuPG, unpacked by GNU tar) holds none of it either',
    { timeout: 180_000 },
    async () => {
      expect(Object.keys(traces).length).toBe(8);
      const gpg: Gpg = createGpg();
      try {
        const pub = path.join(dir, 'escrow.asc');
        fs.writeFileSync(pub, gpg.publicKey);
        const esc = await s.cli(['backup', 'escrow', 'add', '--public-key', pub, '--json']);
        expect(esc.code, esc.stderr).toBe(0);
        const target = path.join(dir, 'target');
        fs.mkdirSync(target);
        const add = await s.cli([
          'backup',
          'target',
          'add',
          'lyon',
          '--type',
          'path',
          '--url',
          `file://${target}`,
          '--jurisdiction',
          'FR',
          '--lat',
          '45.764',
          '--lon',
          '4.8357',
          '--json',
        ]);
        expect(add.code, add.stderr).toBe(0);
        const run = await s.cli(['backup', 'run', '--json']);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        const id = (JSON.parse(run.stdout) as { targets: { backupId: string }[] }).targets[0]!.backupId;
        const parts = fs
          .readdirSync(path.join(target, id))
          .filter((f) => f.endsWith('.pgp'))
          .sort();
        expect(parts.length).toBeGreaterThan(0);
        const tarBytes = Buffer.concat(parts.map((p) => gpg.run(['--decrypt', path.join(target, id, p)])));
        const out = path.join(dir, 'untar');
        fs.mkdirSync(out);
        execFileSync('tar', ['-x', '-C', out], { input: tarBytes });
        const all = files(out);
        // the unpacked backup holds the database (the check can find what it looks for)
        expect(all.some((f) => fs.readFileSync(f).includes(Buffer.from('SQLite format 3')))).toBe(true);
        const left = Object.entries(traces).flatMap(([k, m]) =>
          all.filter((f) => holds(fs.readFileSync(f), m)).map((f) => `${k} in ${path.relative(out, f)}`),
        );
        expect(left).toEqual([]);
      } finally {
        gpg.close();
      }
    },
  );

  it('delete: an invited account goes outright, and is then unknown (exit 2)', async () => {
    const inv = await s.cli(['user', 'invite', 'dave', '--email', 'dave@example.test', '--role', 'member', '--json']);
    expect(inv.code, inv.stderr).toBe(0);
    const d = await s.cli(['user', 'delete', 'dave', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ deleted: true });
    expect((await s.cli(['user', 'delete', 'dave'])).code).toBe(2);
    const list = JSON.parse((await s.cli(['user', 'list', '--json'])).stdout) as { users: { username: string }[] };
    expect(list.users.map((x) => x.username)).not.toContain('dave');
  });
});
