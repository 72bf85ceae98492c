import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { tempDir } from '../support/tmp.js';
import { openAppliance } from '../../src/main.js';
import { createLogger } from '../../src/shared/logger.js';
import { cli, openssl, opensslVerify } from './support.js';

let t: TestAppliance;
let work: string;
beforeAll(async () => {
  t = await createTestAppliance();
  work = tempDir('coffre-seal-');
});
afterAll(async () => {
  await t?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('the sealing key', () => {
  it('is made at init inside the HSM: ECDSA P-256, sensitive, never extractable; a self-signed certificate names the appliance', async () => {
    const a = await t.appliance.keys.provider.signingKeyAttributes('seal');
    expect(a).toMatchObject({
      sensitive: true,
      extractable: false,
      alwaysSensitive: true,
      neverExtractable: true,
      token: true,
      private: true,
    });
    const c = await t.appliance.seals.certificate();
    expect(c).toMatchObject({ source: 'self-signed', fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(c.subject).toContain(`CN=Coffre seal ${t.init.applianceId}`);
    fs.writeFileSync(path.join(work, 'self.pem'), c.pem);
    const text = openssl(['x509', '-in', path.join(work, 'self.pem'), '-noout', '-text']);
    expect(text.status).toBe(0);
    expect(text.out).toMatch(/ASN1 OID: prime256v1/);
    expect(text.out).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text.out).toMatch(/Digital Signature, Non Repudiation/);
    expect(text.out).toMatch(/CA:FALSE/);
    // the self-signature itself is made by the HSM key
    expect(
      openssl(['verify', '-partial_chain', '-CAfile', path.join(work, 'self.pem'), path.join(work, 'self.pem')]).out,
    ).toMatch(/OK/);
  });

  it('signs inside the HSM; openssl alone verifies with the certificate, and refuses a changed byte or another signature', async () => {
    const data = Buffer.from(`{"seal":"${crypto.randomUUID()}"}\n`);
    const sig = await t.appliance.seals.sign(data);
    const { pem } = await t.appliance.seals.certificate();
    const ok = opensslVerify(work, pem, data, sig);
    expect(ok).toMatchObject({ status: 0 });
    expect(ok.out).toMatch(/Verified OK/);
    const changed = Buffer.from(data);
    changed[3] = changed[3]! ^ 1;
    const bad = opensslVerify(work, pem, changed, sig);
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/Verification failure/);
    const other = await t.appliance.seals.sign(Buffer.from('something else'));
    expect(opensslVerify(work, pem, data, other).status).toBe(1);
    expect(await t.appliance.seals.verify(data, sig)).toBe(true);
    expect(await t.appliance.seals.verify(changed, sig)).toBe(false);
    // ECDSA: two signatures of the same bytes differ, both verify
    const again = await t.appliance.seals.sign(data);
    expect(again.equals(sig)).toBe(false);
    expect(opensslVerify(work, pem, data, again).status).toBe(0);
  });

  it("CSR for the customer's CA, the issued certificate imported; foreign or unreadable certificates refused (exit 2)", async () => {
    const csr = path.join(work, 'seal.csr');
    const r = await cli(['keys', 'seal-csr', '--data-dir', t.dataDir, '--out', csr, '--json']);
    expect(r.code, r.err).toBe(0);
    expect(openssl(['req', '-in', csr, '-verify', '-noout']).out).toMatch(/verify OK/i);
    expect(openssl(['req', '-in', csr, '-noout', '-subject']).out).toContain(`Coffre seal ${t.init.applianceId}`);
    expect((await cli(['keys', 'seal-csr', '--data-dir', t.dataDir, '--out', csr])).code).toBe(2); // never overwritten
    // the customer's CA
    const ca = (f: string) => path.join(work, f);
    expect(
      openssl([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        ca('ca.key'),
        '-out',
        ca('ca.pem'),
        '-days',
        '30',
        '-subj',
        '/CN=Customer CA',
      ]).status,
    ).toBe(0);
    expect(
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca('ca.pem'),
        '-CAkey',
        ca('ca.key'),
        '-CAcreateserial',
        '-days',
        '30',
        '-copy_extensions',
        'copy',
        '-out',
        ca('issued.pem'),
      ]).status,
    ).toBe(0);
    fs.writeFileSync(
      ca('chain.pem'),
      fs.readFileSync(ca('issued.pem'), 'utf8') + fs.readFileSync(ca('ca.pem'), 'utf8'),
    );
    const imp = await cli(['keys', 'seal-cert', 'import', ca('chain.pem'), '--data-dir', t.dataDir, '--json']);
    expect(imp.code, imp.err).toBe(0);
    expect(JSON.parse(imp.out)).toMatchObject({ source: 'imported', issuer: 'CN=Customer CA' });
    const show = await cli(['keys', 'seal-cert', 'show', '--data-dir', t.dataDir, '--json']);
    const current = JSON.parse(show.out) as { pem: string; source: string };
    expect(current.source).toBe('imported');
    // a signature made now checks against the CA-issued certificate, and that certificate against the CA
    const b = await openAppliance({
      dataDir: t.dataDir,
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    try {
      const data = Buffer.from('sealed under the CA-issued certificate');
      const sig = await b.seals.sign(data);
      expect((await b.seals.certificate()).pem).toBe(current.pem);
      expect(opensslVerify(work, current.pem, data, sig).status).toBe(0);
    } finally {
      await b.close();
    }
    fs.writeFileSync(ca('current.pem'), current.pem);
    expect(openssl(['verify', '-CAfile', ca('ca.pem'), ca('current.pem')]).out).toMatch(/current.pem: OK/);
    // the CA's own certificate is not for the sealing key; nor is a file without a certificate
    const foreign = await cli(['keys', 'seal-cert', 'import', ca('ca.pem'), '--data-dir', t.dataDir]);
    expect(foreign.code).toBe(2);
    expect(foreign.err).toMatch(/^SEAL_CERT_INVALID: .*its public key differs/m);
    fs.writeFileSync(ca('junk.pem'), 'hello');
    const junk = await cli(['keys', 'seal-cert', 'import', ca('junk.pem'), '--data-dir', t.dataDir]);
    expect(junk.code).toBe(2);
    expect(junk.err).toMatch(/^SEAL_CERT_INVALID: .*holds no PEM certificate/m);
    expect(JSON.parse((await cli(['keys', 'seal-cert', 'show', '--data-dir', t.dataDir, '--json'])).out)).toMatchObject(
      { source: 'imported' },
    );
  });

  it('an install without a sealing certificate gets one, for the same HSM key, at its next start', async () => {
    const before = await t.appliance.seals.certificate();
    await t.appliance.db.db.deleteFrom('seal_certificates').execute();
    const b = await openAppliance({
      dataDir: t.dataDir,
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    try {
      const c = await b.seals.certificate();
      expect(c.source).toBe('self-signed');
      expect(c.fingerprint).not.toBe(before.fingerprint);
      const pub = (pem: string) => new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
      expect(pub(c.pem).equals(pub(before.pem))).toBe(true);
      expect(await b.db.db.selectFrom('seal_certificates').select('fingerprint').execute()).toHaveLength(1);
    } finally {
      await b.close();
    }
  });
});
