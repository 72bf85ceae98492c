import fs from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { TlsConfig } from '../config/sections/http.js';
import { readSecretFile } from '../config/index.js';
import { AppError } from '../shared/errors.js';

/**
 * Mozilla "modern"-plus policy, restricted to 256-bit AEAD suites with forward secrecy
 * (docs/architecture.md "Invariants"). The TLS 1.3 names are listed explicitly:
 * otherwise Node still offers TLS_AES_128_GCM_SHA256.
 */
export const CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const ECDH_CURVES = 'X25519:P-256:P-384';

export const TLS_POLICY: SecureContextOptions & TlsOptions = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: CIPHERS,
  ecdhCurve: ECDH_CURVES,
  honorCipherOrder: true,
};

/** Reads the certificate and key named in the config into https server options. */
export function tlsServerOptions(cfg: TlsConfig): TlsOptions {
  const read = (f: string, what: string) => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new AppError('TLS_UNREADABLE', `cannot read ${what} ${f} (${(e as NodeJS.ErrnoException).code})`, {
        exitCode: 2,
        hint: `check tls.${what}`,
      });
    }
  };
  const opts: TlsOptions = {
    ...TLS_POLICY,
    cert: read(cfg.certFile, 'certFile'),
    key: read(cfg.keyFile, 'keyFile'),
  };
  if (cfg.keyPassphraseFile) opts.passphrase = readSecretFile(cfg.keyPassphraseFile, 'tls.keyPassphraseFile');
  if (cfg.caFile) opts.ca = read(cfg.caFile, 'caFile');
  return opts;
}
