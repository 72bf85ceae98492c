import crypto, { webcrypto } from 'node:crypto';
import type { SigningKeys } from '../keys/types.js';
import { sealsErrors } from './errors.js';
import { loadX509 } from '../shared/x509.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { ...EC, hash: 'SHA-256' } as const;

/**
 * A WebCrypto whose `sign` with the returned private key goes to the HSM (ECDSA over the SHA-256
 * digest computed here); everything else is Node's WebCrypto. The private "key" is a handle-less
 * stand-in: the key itself never leaves the HSM.
 */
async function hsmCrypto(
  keys: SigningKeys,
  keyName: string,
  spki: Buffer,
): Promise<{ crypto: Crypto; keys: CryptoKeyPair }> {
  const subtle = webcrypto.subtle;
  const publicKey = (await subtle.importKey('spki', spki, EC, true, ['verify'])) as CryptoKey;
  const privateKey = { algorithm: EC, type: 'private', extractable: false, usages: ['sign'] } as unknown as CryptoKey;
  const sign = async (
    alg: { hash?: string | { name: string } },
    key: CryptoKey,
    data: BufferSource,
  ): Promise<ArrayBuffer> => {
    if (key !== privateKey) return subtle.sign(alg as EcdsaParams, key, data);
    const hash = typeof alg.hash === 'string' ? alg.hash : alg.hash?.name;
    if (hash !== 'SHA-256') throw new Error(`the sealing key signs SHA-256 only (asked ${String(hash)})`);
    const bytes = ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);
    const raw = await keys.signDigest(keyName, crypto.createHash('sha256').update(bytes).digest());
    return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
  };
  const proxied = new Proxy(subtle, {
    get(target, prop) {
      if (prop === 'sign') return sign;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const c = {
    subtle: proxied,
    getRandomValues: <T extends ArrayBufferView | null>(a: T) => webcrypto.getRandomValues(a as never) as T,
    randomUUID: () => webcrypto.randomUUID(),
  };
  return { crypto: c as unknown as Crypto, keys: { publicKey, privateKey } };
}

export interface SealIdentity {
  applianceId: string;
  /** the organisation's name (site.name), when set */
  organisation?: string | undefined;
}

const subjectOf = (id: SealIdentity): Record<string, string[]>[] => [
  { CN: [`Coffre seal ${id.applianceId}`] },
  { O: [id.organisation || 'Coffre appliance'] },
];

/** A self-signed certificate for the HSM key (ECDSA P-256 with SHA-256; digitalSignature and nonRepudiation). */
export async function selfSignedSealCert(
  keys: SigningKeys,
  keyName: string,
  spki: Buffer,
  id: SealIdentity,
  now: Date,
  years = 10,
): Promise<string> {
  const x509 = await loadX509();
  const { crypto: c, keys: pair } = await hsmCrypto(keys, keyName, spki);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: crypto
        .randomBytes(16)
        .toString('hex')
        .replace(/^[89a-f]/, '1'),
      name: subjectOf(id),
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(Date.UTC(now.getUTCFullYear() + years, now.getUTCMonth(), now.getUTCDate())),
      keys: pair,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
        await x509.SubjectKeyIdentifierExtension.create(pair.publicKey, false, c),
      ],
    },
    c,
  );
  return cert.toString('pem');
}

/** A PKCS#10 request for the customer's CA, signed by the HSM key. */
export async function sealCsr(keys: SigningKeys, keyName: string, spki: Buffer, id: SealIdentity): Promise<string> {
  const x509 = await loadX509();
  const { crypto: c, keys: pair } = await hsmCrypto(keys, keyName, spki);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: subjectOf(id),
      keys: pair,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
      ],
    },
    c,
  );
  return csr.toString('pem');
}

export interface ParsedCert {
  pem: string;
  fingerprint: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

export function parseCert(pem: string): ParsedCert {
  const x = new crypto.X509Certificate(pem);
  return {
    pem: x.toString(),
    fingerprint: crypto.createHash('sha256').update(x.raw).digest('hex'),
    subject: x.subject.replace(/\n/g, ', '),
    issuer: x.issuer.replace(/\n/g, ', '),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
  };
}

/**
 * Checks a certificate issued for the sealing key (the first PEM block of `text`; a chain may
 * follow): it must hold the HSM key's public key, be valid now, and not be a CA certificate.
 */
export function checkIssuedCert(text: string, spki: Buffer, now: Date): ParsedCert {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  if (!block) throw sealsErrors.certInvalid('the file holds no PEM certificate');
  let x: crypto.X509Certificate;
  try {
    x = new crypto.X509Certificate(block);
  } catch {
    throw sealsErrors.certInvalid('the PEM block is not a certificate');
  }
  const pub = x.publicKey.export({ type: 'spki', format: 'der' });
  if (!pub.equals(spki))
    throw sealsErrors.certInvalid("it is not for this appliance's sealing key (its public key differs)");
  if (new Date(x.validTo).getTime() <= now.getTime())
    throw sealsErrors.certInvalid(`it expired on ${new Date(x.validTo).toISOString()}`);
  if (new Date(x.validFrom).getTime() > now.getTime() + 86_400_000)
    throw sealsErrors.certInvalid(`it is not valid before ${new Date(x.validFrom).toISOString()}`);
  if (x.ca) throw sealsErrors.certInvalid('it is a CA certificate');
  return parseCert(block);
}

/** Raw r‖s (64 bytes) → DER ECDSA-Sig-Value (what openssl reads). */
export function rawToDer(raw: Buffer): Buffer {
  if (raw.length !== 64) throw new Error(`an ECDSA P-256 signature is 64 bytes raw (got ${raw.length})`);
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
