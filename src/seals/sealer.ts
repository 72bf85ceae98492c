import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SealsSchema } from '../db/index.js';
import type { SigningKeys } from '../keys/types.js';
import type { Clock } from '../shared/clock.js';
import { checkIssuedCert, parseCert, rawToDer, sealCsr, selfSignedSealCert, type SealIdentity } from './certificate.js';
import type { SealCertificate, Sealer } from './types.js';

/** the HSM signing key of seals, receipts and reports: `<kekLabel>-sign-seal` */
export const SEAL_KEY = 'seal';

export interface HsmSealerOptions {
  db: Kysely<SealsSchema>;
  keys: SigningKeys;
  clock: Clock;
  identity: SealIdentity;
}

/**
 * The appliance's sealing key (docs/proofs.md): an ECDSA P-256 pair made inside the HSM, its
 * certificates in `seal_certificates`. `ensure()` creates the pair and a self-signed certificate
 * when missing (`coffre init`, and the first start of an install that predates them); `sign`
 * needs the HSM, `verify` and `certificate` do not.
 */
export class HsmSealer implements Sealer {
  private spki: Buffer | undefined;
  private current: SealCertificate | undefined;

  constructor(private readonly o: HsmSealerOptions) {}

  /** Creates the key pair and a self-signed certificate when missing; returns the current certificate. */
  async ensure(): Promise<SealCertificate> {
    const spki = await this.publicKey(true);
    const have = await this.certificates();
    const mine = have.filter((c) => publicKeyOf(c.pem).equals(spki));
    if (mine.length) return (this.current = mine[0]!);
    const pem = await selfSignedSealCert(this.o.keys, SEAL_KEY, spki, this.o.identity, this.o.clock.now());
    await this.store(pem, 'self-signed');
    return this.certificate();
  }

  async sign(data: Buffer): Promise<Buffer> {
    if (!this.spki) await this.ensure(); // the HSM was down when this process started
    const digest = crypto.createHash('sha256').update(data).digest();
    return rawToDer(await this.o.keys.signDigest(SEAL_KEY, digest));
  }

  async certificate(): Promise<SealCertificate> {
    if (this.current) return this.current;
    const spki = await this.publicKey(false).catch(() => undefined);
    const all = await this.certificates();
    const c = (spki ? all.find((x) => publicKeyOf(x.pem).equals(spki)) : undefined) ?? all[0];
    if (!c) return this.ensure();
    return (this.current = c);
  }

  async verify(data: Buffer, signature: Buffer, certPem?: string): Promise<boolean> {
    const pems = certPem ? [certPem] : (await this.certificates()).map((c) => c.pem);
    return pems.some((pem) => {
      try {
        return crypto.verify(
          'sha256',
          data,
          { key: new crypto.X509Certificate(pem).publicKey, dsaEncoding: 'der' },
          signature,
        );
      } catch {
        return false;
      }
    });
  }

  /** A PKCS#10 request for the customer's CA (PEM), signed by the HSM key. */
  async csr(): Promise<string> {
    return sealCsr(this.o.keys, SEAL_KEY, await this.publicKey(false), this.o.identity);
  }

  /** Makes a certificate issued by the customer's CA the current one (checked against the HSM key). */
  async importCertificate(text: string): Promise<SealCertificate> {
    const c = checkIssuedCert(text, await this.publicKey(false), this.o.clock.now());
    await this.store(c.pem, 'imported');
    this.current = undefined;
    return this.certificate();
  }

  /** Every certificate the key has had, newest first. */
  async certificates(): Promise<SealCertificate[]> {
    const rows = await this.o.db
      .selectFrom('seal_certificates')
      .selectAll()
      .where('key_name', '=', SEAL_KEY)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({ ...parseCert(r.pem), source: r.source as SealCertificate['source'] }));
  }

  private async publicKey(create: boolean): Promise<Buffer> {
    if (this.spki) return this.spki;
    this.spki = await this.o.keys.signingPublicKey(SEAL_KEY, { create });
    return this.spki;
  }

  private async store(pem: string, source: SealCertificate['source']): Promise<void> {
    const p = parseCert(pem);
    const now = this.o.clock.nowMs();
    const last = await this.o.db
      .selectFrom('seal_certificates')
      .select('created_at')
      .where('key_name', '=', SEAL_KEY)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    await this.o.db
      .insertInto('seal_certificates')
      .values({
        fingerprint: p.fingerprint,
        key_name: SEAL_KEY,
        pem: p.pem,
        source,
        created_at: Math.max(now, Number(last?.created_at ?? 0) + 1),
      })
      .onConflict((oc) => oc.column('fingerprint').doNothing())
      .execute();
    this.current = undefined;
  }
}

const publicKeyOf = (pem: string): Buffer =>
  new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
