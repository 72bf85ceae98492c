import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startTestTsa, type TestTsa } from '../support/tsa.js';
import { tempDir } from '../support/tmp.js';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { openssl } from './support.js';

/**
 * Deposit receipts: every version gets one, signed by the HSM sealing key and timestamped by a
 * real RFC 3161 TSA on loopback; the CLI writes the file set a judge checks with stock openssl
 * alone; members only; nothing confidential in clear at rest; a TSA outage leaves it pending, then
 * the retrier gets the token.
 */
let env: VaultEnv;
let tsa: TestTsa;
let owner: User;
let viewer: User;
let outsider: User;
let admin: User;
let ws: string;
let work: string;
const NAME = 'Contrat-Marqueur-7Q3.pdf';

beforeAll(async () => {
  tsa = await startTestTsa();
  env = await openVaultEnv({
    COFFRE_CFG_auth__mfa__requiredRoles: '[]',
    COFFRE_CFG_seals__tsa__urls: JSON.stringify([tsa.url]),
    COFFRE_CFG_seals__tsa__caFile: tsa.caFile,
    COFFRE_CFG_seals__tsa__alertAfterMs: '600000',
  });
  owner = await env.user('rita');
  viewer = await env.user('vic');
  outsider = await env.user('oscar');
  admin = await env.user('ada', 'admin');
  ws = await env.workspace(owner, 'Deeds');
  await env.addMember(owner, ws, viewer, 'viewer');
  work = tempDir('coffre-receipts-');
}, 120_000);
afterAll(async () => {
  await env?.close();
  await tsa?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const db = () => env.t.appliance.db.db;
const getReceipt = (u: User, id: string, q = '') =>
  env.req('GET', `/api/v1/documents/${id}/receipt${q}`, { token: u.token });
const clientEnv = (u: User) => ({
  COFFRE_URL: `https://localhost:${env.port}`,
  COFFRE_TOKEN: u.token,
  COFFRE_CA: path.join(env.t.dataDir, 'tls', 'cert.pem'),
});

describe('deposit receipts', () => {
  it('every deposit gets a signed, timestamped receipt that stock openssl verifies offline; a tampered one fails', async () => {
    const content = crypto.randomBytes(300_000);
    const doc = await upload(env, owner, ws, NAME, content);
    expect(doc).toMatchObject({ version: 1, receipt: expect.any(String) });
    await env.t.appliance.receipts.settled();

    const dir = path.join(work, 'v1');
    const r = await runCli(['doc', 'receipt', doc.id, '-o', dir, '--json'], { env: clientEnv(viewer) });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { files: string[]; timestamp: string; version: number };
    expect(out).toMatchObject({ version: 1, timestamp: 'granted' });
    const base = `receipt-${doc.id}-v1`;
    expect(out.files.sort()).toEqual(
      [`${base}.json`, `${base}.json.sig`, `${base}.json.tsr`, 'seal-cert.pem', 'README.txt'].sort(),
    );
    const f = (n: string) => path.join(dir, n);

    // the receipt states what was deposited, by whom, when, and where it sits in the audit trail
    const body = JSON.parse(fs.readFileSync(f(`${base}.json`), 'utf8'));
    const audit = await db()
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('action', '=', 'doc.create')
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    expect(body).toMatchObject({
      type: 'coffre.deposit-receipt',
      version: 1,
      applianceId: env.t.appliance.config.applianceId,
      deposit: {
        action: 'doc.create',
        workspaceId: ws,
        documentId: doc.id,
        version: 1,
        depositor: { actor: expect.stringMatching(/^token:/), userId: owner.id, username: owner.username },
      },
      content: { sha256: crypto.createHash('sha256').update(content).digest('hex'), size: content.length },
      audit: { seq: Number(audit.seq), hash: audit.hash },
      certificateSha256: (await env.t.appliance.seals.certificate()).fingerprint,
    });
    expect(body.name).toBeUndefined();
    expect(fs.readFileSync(f(`${base}.json`), 'utf8')).not.toContain(NAME);

    // what README.txt tells the judge to run, with stock openssl and nothing else
    expect(fs.readFileSync(f('README.txt'), 'utf8')).toContain(
      `openssl dgst -sha256 -verify seal-pub.pem -signature ${base}.json.sig ${base}.json`,
    );
    expect(openssl(['x509', '-in', f('seal-cert.pem'), '-pubkey', '-noout', '-out', f('seal-pub.pem')]).status).toBe(0);
    const ok = openssl([
      'dgst',
      '-sha256',
      '-verify',
      f('seal-pub.pem'),
      '-signature',
      f(`${base}.json.sig`),
      f(`${base}.json`),
    ]);
    expect(ok.out).toContain('Verified OK');
    expect(ok.status).toBe(0);
    const ts = openssl([
      'ts',
      '-verify',
      '-data',
      f(`${base}.json`),
      '-in',
      f(`${base}.json.tsr`),
      '-CAfile',
      tsa.caFile,
      '-untrusted',
      tsa.certFile,
    ]);
    expect(ts.out, ts.out).toContain('Verification: OK');

    // one changed byte: both checks fail
    const tampered = fs
      .readFileSync(f(`${base}.json`), 'utf8')
      .replace(`"size": ${content.length}`, `"size": ${content.length + 1}`);
    fs.writeFileSync(f('tampered.json'), tampered);
    const bad = openssl([
      'dgst',
      '-sha256',
      '-verify',
      f('seal-pub.pem'),
      '-signature',
      f(`${base}.json.sig`),
      f('tampered.json'),
    ]);
    expect(bad.out).toContain('Verification failure');
    expect(bad.status).toBe(1);
    const badTs = openssl([
      'ts',
      '-verify',
      '-data',
      f('tampered.json'),
      '-in',
      f(`${base}.json.tsr`),
      '-CAfile',
      tsa.caFile,
      '-untrusted',
      tsa.certFile,
    ]);
    expect(badTs.status).not.toBe(0);

    // the same files as a tar from the API (what the console's Receipt button downloads)
    const tarRes = await getReceipt(viewer, doc.id, '?version=1&format=tar');
    expect(tarRes.status).toBe(200);
    expect(tarRes.headers['content-type']).toContain('application/x-tar');
    const tdir = path.join(work, 'tar');
    fs.mkdirSync(tdir);
    fs.writeFileSync(path.join(tdir, 'r.tar'), tarRes.body);
    expect(openssl(['version']).status).toBe(0);
    execFileSync('tar', ['-xf', 'r.tar'], { cwd: tdir });
    const td = path.join(tdir, base);
    expect(fs.readFileSync(path.join(td, `${base}.json`))).toEqual(fs.readFileSync(f(`${base}.json`)));
    expect(
      openssl(['x509', '-in', path.join(td, 'seal-cert.pem'), '-pubkey', '-noout', '-out', path.join(td, 'pub.pem')])
        .status,
    ).toBe(0);
    expect(
      openssl([
        'dgst',
        '-sha256',
        '-verify',
        path.join(td, 'pub.pem'),
        '-signature',
        path.join(td, `${base}.json.sig`),
        path.join(td, `${base}.json`),
      ]).out,
    ).toContain('Verified OK');

    // the CLI refuses to overwrite a receipt already written
    const again = await runCli(['doc', 'receipt', doc.id, '-o', dir], { env: clientEnv(viewer) });
    expect(again.code).toBe(2);
  }, 60_000);

  it('a new version gets its own receipt; the name only when the depositor asks for it', async () => {
    const doc = await upload(env, owner, ws, NAME, Buffer.from('first'));
    const v2 = await env.req('POST', `/api/v1/documents/${doc.id}/versions`, {
      token: owner.token,
      headers: { 'content-type': 'application/octet-stream', 'coffre-receipt-name': 'include' },
      body: Buffer.from('second version'),
    });
    expect(v2.status, v2.body.toString()).toBe(201);
    await env.t.appliance.receipts.settled();
    const r1 = await getReceipt(owner, doc.id, '?version=1');
    const r2 = await getReceipt(owner, doc.id);
    expect(r1.status).toBe(200);
    expect(r2.status).toBe(200);
    expect(JSON.parse(r1.json().body).name).toBeUndefined();
    expect(JSON.parse(r2.json().body)).toMatchObject({ name: NAME, deposit: { action: 'doc.write', version: 2 } });
    expect(r2.json()).toMatchObject({ version: 2, timestamp: { state: 'granted' } });
    const bad = await env.req('POST', `/api/v1/documents/${doc.id}/versions`, {
      token: owner.token,
      headers: { 'content-type': 'application/octet-stream', 'coffre-receipt-name': 'yes' },
      body: Buffer.from('third'),
    });
    expect(bad.status).toBe(400);
    expect((await getReceipt(owner, doc.id, '?version=9')).json().error.code).toBe('RECEIPT_NOT_FOUND');

    // at rest: neither the digest nor the name in clear in the receipts table
    const rows = await db().selectFrom('seal_receipts').selectAll().where('document_id', '=', doc.id).execute();
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(crypto.createHash('sha256').update('second version').digest('hex'));
    expect(dump).not.toContain(NAME);
    // each read is audited
    const reads = await db().selectFrom('audit_events').select('actor').where('action', '=', 'doc.receipt').execute();
    expect(reads.length).toBeGreaterThanOrEqual(2);
  });

  it('members only: an outsider and an admin who is not a member get the 404 of a missing document', async () => {
    const doc = await upload(env, owner, ws, 'x.bin', Buffer.from('x'));
    expect((await getReceipt(viewer, doc.id)).status).toBe(200);
    for (const u of [outsider, admin]) {
      const r = await getReceipt(u, doc.id);
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    }
    const denied = await db()
      .selectFrom('audit_events')
      .select(['outcome', 'reason'])
      .where('action', '=', 'doc.receipt')
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.length).toBeGreaterThanOrEqual(2);
  });

  it('TSA down: the receipt is signed and left pending; the retrier gets the token once the TSA is back', async () => {
    await tsa.stop();
    const doc = await upload(env, owner, ws, 'late.bin', Buffer.from('timestamp me later'));
    await env.t.appliance.receipts.settled();
    const r = await getReceipt(owner, doc.id);
    expect(r.json().timestamp).toEqual({ state: 'pending' });
    // the signature is there already
    expect(r.json().signature).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect((await env.t.appliance.timestamps.tick()).pending).toBeGreaterThanOrEqual(1);
    await tsa.start();
    const t = await env.t.appliance.timestamps.tick();
    expect(t.pending).toBe(0);
    expect(t.granted).toBeGreaterThanOrEqual(1);
    expect((await getReceipt(owner, doc.id)).json().timestamp.state).toBe('granted');
  });

  it('an HSM that could not sign at deposit time: the receipt is signed when fetched', async () => {
    const doc = await upload(env, owner, ws, 'unsigned.bin', Buffer.from('sign me later'));
    await env.t.appliance.receipts.settled();
    // as if the HSM had refused: the row keeps its facts, not its signature
    await db()
      .updateTable('seal_receipts')
      .set({ body_enc: null, signature: null, cert_fingerprint: null, signed_at: null })
      .where('document_id', '=', doc.id)
      .execute();
    expect(await env.t.appliance.receipts.signUnsigned()).toBe(1);
    const r = await getReceipt(owner, doc.id);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.json().body).deposit.documentId).toBe(doc.id);
  });
});
