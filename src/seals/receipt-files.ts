import type { ReceiptView } from './receipts.js';

/**
 * The file set of a receipt that an auditor checks offline with openssl alone (docs/proofs.md
 * "Deposit receipts"): `receipt-<doc>-v<N>.json` (the signed bytes), `.json.sig` (DER ECDSA),
 * `.json.tsr` (RFC 3161 response, when granted), `seal-cert.pem` and README.txt with the commands.
 * Written by `coffre doc receipt` and served as a tar by `GET /documents/{id}/receipt?format=tar`.
 */
export function receiptFiles(r: ReceiptView): { base: string; files: [string, Buffer][] } {
  const base = `receipt-${r.documentId}-v${r.version}`;
  const files: [string, Buffer][] = [
    [`${base}.json`, Buffer.from(r.body, 'utf8')],
    [`${base}.json.sig`, Buffer.from(r.signature, 'base64')],
    ...(r.timestamp.token
      ? ([[`${base}.json.tsr`, Buffer.from(r.timestamp.token, 'base64')]] as [string, Buffer][])
      : []),
    ['seal-cert.pem', Buffer.from(r.certificate.pem, 'utf8')],
    ['README.txt', Buffer.from(receiptReadme(base, r.timestamp.state === 'granted'), 'utf8')],
  ];
  return { base, files };
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
