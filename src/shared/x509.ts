import { webcrypto } from 'node:crypto';

type X509 = typeof import('@peculiar/x509');

/**
 * @peculiar/x509 (and its ASN.1 stack, ~4 MB of heap) loads only when a certificate or a request
 * is made. It is a CommonJS package: its exports are those of the default export, both when Node
 * loads it and in the bundle (scripts/build-bundle.mjs), where the named ones are missing.
 */
export async function loadX509(): Promise<X509> {
  await import('reflect-metadata');
  const x509 = ((await import('@peculiar/x509')) as unknown as { default: X509 }).default;
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  return x509;
}
