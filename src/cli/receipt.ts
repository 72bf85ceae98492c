import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../shared/errors.js';
import { sealsErrors, type ReceiptView } from '../seals/index.js';
import { emit, type Io } from './output.js';
import type { Client } from './client.js';

/**
 * Writes a receipt as the file set an auditor checks offline with openssl alone: `NAME.json` (the
 * signed bytes), `NAME.json.sig` (DER ECDSA), `NAME.json.tsr` (RFC 3161 response, when granted),
 * `seal-cert.pem` and README.txt with the commands. Files are never overwritten. The signature is
 * checked here first (SEAL_INVALID, exit 1, and nothing written when it does not verify).
 */
export function writeReceiptFiles(dir: string, r: ReceiptView): { files: string[]; base: string } {
  const body = Buffer.from(r.body, 'utf8');
  const sig = Buffer.from(r.signature, 'base64');
  const ok = crypto.verify(
    'sha256',
    body,
    { key: new crypto.X509Certificate(r.certificate.pem).publicKey, dsaEncoding: 'der' },
    sig,
  );
  if (!ok) throw sealsErrors.signatureInvalid(`the receipt of version ${r.version}`);
  const base = `receipt-${r.documentId}-v${r.version}`;
  const files: [string, string | Buffer][] = [
    [`${base}.json`, body],
    [`${base}.json.sig`, sig],
    ...(r.timestamp.token
      ? ([[`${base}.json.tsr`, Buffer.from(r.timestamp.token, 'base64')]] as [string, Buffer][])
      : []),
    ['seal-cert.pem', r.certificate.pem],
    ['README.txt', receiptReadme(base, r.timestamp.state === 'granted')],
  ];
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const taken = files.map(([n]) => n).filter((n) => fs.existsSync(path.join(dir, n)));
  if (taken.length)
    throw new AppError('USAGE', `${dir} already holds ${taken.join(', ')}`, {
      exitCode: 2,
      hint: 'choose an empty directory',
    });
  for (const [n, data] of files) fs.writeFileSync(path.join(dir, n), data, { flag: 'wx', mode: 0o644 });
  return { files: files.map(([n]) => n), base };
}

export function receiptReadme(base: string, tsr: boolean): string {
  return `Coffre deposit receipt (docs/proofs.md "Deposit receipts" in the Coffre repository)

${base}.json is signed, byte for byte, by the appliance's sealing key (ECDSA P-256 held in its
HSM); ${base}.json.sig is the DER signature. Check it with openssl alone:

  openssl x509 -in seal-cert.pem -noout -subject -issuer -fingerprint -sha256
  openssl x509 -in seal-cert.pem -pubkey -noout > seal-pub.pem
  openssl dgst -sha256 -verify seal-pub.pem -signature ${base}.json.sig ${base}.json

("Verified OK"; any changed byte gives "Verification failure".) Compare the certificate's
fingerprint with the one the organisation publishes; "certificateSha256" in the receipt names it.

The receipt states the SHA-256 and size of the deposited content ("content"): check a copy of the
document against it with

  openssl dgst -sha256 DOCUMENT-FILE

"audit" is the deposit's record in the appliance's audit trail (sequence number and chain hash),
covered by the daily audit seals (coffre audit seals export). "salt" is random: it keeps the
signature from confirming a guessed document to whoever sees the receipt without the document.
${
  tsr
    ? `
${base}.json.tsr is an RFC 3161 time-stamp response from the organisation's time-stamping
authority over the same bytes; it proves the receipt existed at the time it states:

  openssl ts -reply -in ${base}.json.tsr -text
  openssl ts -verify -data ${base}.json -in ${base}.json.tsr -CAfile TSA-CA.pem -untrusted TSA-CERT.pem

(TSA-CA.pem: the authority's CA certificate, obtained from the authority itself; TSA-CERT.pem: its
signing certificate, which the response also carries.)
`
    : `
No RFC 3161 timestamp was attached (none configured, or still pending: fetch the receipt again later).
`
}`;
}

/** `coffre doc receipt ID [--version N] -o DIR` */
export async function receipt(
  io: Io,
  client: Client,
  id: string,
  o: { version?: number; output: string; json?: boolean },
): Promise<void> {
  const r = await client.json<ReceiptView>(
    'GET',
    `/documents/${encodeURIComponent(id)}/receipt${o.version ? `?version=${o.version}` : ''}`,
  );
  const dir = path.resolve(o.output);
  const { files, base } = writeReceiptFiles(dir, r);
  emit(
    io,
    o.json,
    { id: r.id, documentId: r.documentId, version: r.version, dir, files, timestamp: r.timestamp.state },
    `wrote the receipt of document ${r.documentId} version ${r.version} to ${dir} (${base}.json, signature verified; timestamp ${r.timestamp.state}); README.txt lists the openssl commands`,
  );
}
