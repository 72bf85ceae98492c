import { X509Certificate } from 'node:crypto';
import type { TLSSocket, TlsOptions } from 'node:tls';

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file (one or more). */
export function parseCaBundle(pem: string): X509Certificate[] {
  const certs = (pem.match(PEM) ?? []).map((p) => new X509Certificate(p));
  if (!certs.length) throw new Error('no certificate in the file');
  return certs;
}

/**
 * What the HTTPS server needs so a scraper can present a client certificate: the server asks every
 * client for one (naming the scrape CAs) but lets it in without; only `GET /metrics` looks at it
 * (`clientCertAllowed`). Browsers that hold no certificate from these CAs are not prompted.
 */
export function clientCertServerOptions(
  caPem: string,
  existingCa: TlsOptions['ca'],
): Pick<TlsOptions, 'requestCert' | 'rejectUnauthorized' | 'ca'> {
  const ca = [...(existingCa === undefined ? [] : Array.isArray(existingCa) ? existingCa : [existingCa]), caPem];
  return { requestCert: true, rejectUnauthorized: false, ca };
}

/**
 * Whether the TLS peer presented a certificate that OpenSSL verified (`authorized`) and that was
 * issued by one of `cas` (the leaf or a certificate of its chain is signed by one of them, or is
 * one of them). The second check matters: the server's own `tls.caFile` is in the same trust store,
 * and a certificate from that CA must not open /metrics. Expired certificates fail at `authorized`.
 */
export function clientCertAllowed(socket: unknown, cas: readonly X509Certificate[]): boolean {
  const s = socket as Partial<TLSSocket>;
  if (typeof s.getPeerCertificate !== 'function' || s.authorized !== true) return false;
  let cert = s.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    const x = new X509Certificate(cert.raw);
    for (const ca of cas) {
      if (x.raw.equals(ca.raw)) return true;
      if (x.checkIssued(ca) && x.verify(ca.publicKey)) return true;
    }
    cert = cert.issuerCertificate;
  }
  return false;
}
