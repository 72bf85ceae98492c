import crypto, { webcrypto } from 'node:crypto';
import { loadX509 } from '../shared/x509.js';

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  fingerprint256: string;
  notAfter: Date;
}

/** Issued certificates may be valid at most 398 days (the CA/Browser Forum limit). */
export const MAX_CERT_DAYS = 398;

/**
 * Makes a self-signed ECDSA P-256 certificate for the appliance, with SANs for the configured
 * host names plus localhost and 127.0.0.1 (and ::1).
 */
export async function makeSelfSigned(hostnames: string[], now = new Date(), days = 397): Promise<SelfSigned> {
  if (days > MAX_CERT_DAYS) throw new Error(`certificate validity over ${MAX_CERT_DAYS} days`);
  const x509 = await loadX509();
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names = [...new Set([...hostnames, 'localhost'])];
  const ips = ['127.0.0.1', '::1'];
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + days * 86_400_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto
      .randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=${names[0]}, O=Coffre appliance`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([
        ...names.map((n) => ({ type: 'dns' as const, value: n })),
        ...ips.map((ip) => ({ type: 'ip' as const, value: ip })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const keyPem = crypto
    .createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' }) as string;
  const certPem = cert.toString('pem');
  return { certPem, keyPem, fingerprint256: certFingerprint(certPem), notAfter };
}

/** SHA-256 fingerprint as colon-separated hex, like `openssl x509 -fingerprint -sha256`. */
export function certFingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}
