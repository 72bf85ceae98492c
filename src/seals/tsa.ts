import crypto, { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { TsaConfig } from '../config/sections/seals.js';
import { AppError } from '../shared/errors.js';

const SHA256 = '2.16.840.1.101.3.4.2.1';
const ID_KP_TIMESTAMPING = '1.3.6.1.5.5.7.3.8';
let engineSet = false;
function engine(): void {
  if (engineSet) return;
  pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto }));
  engineSet = true;
}

/** A granted RFC 3161 timestamp: the whole TimeStampResp (DER), as `openssl ts -verify -in` reads it. */
export interface Timestamp {
  response: Buffer;
  genTime: Date;
  /** hex serial number the TSA gave the token */
  serial: string;
  /** the TSA that answered */
  url: string;
}

export const tsaErrors = {
  unavailable: (why: string) =>
    new AppError('TSA_UNAVAILABLE', `no time-stamping authority answered: ${why}`, {
      httpStatus: 503,
      expose: true,
      exitCode: 1,
      hint: 'check seals.tsa.urls and the network; the item stays pending and is retried',
    }),
  invalid: (why: string) =>
    new AppError('TSA_INVALID', `the time-stamping authority's answer was refused: ${why}`, {
      httpStatus: 502,
      expose: true,
      exitCode: 1,
      hint: 'check seals.tsa.caFile (the pinned TSA certificate or CA)',
    }),
};

const toAb = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** Loads every certificate of a PEM bundle (the pinned TSA certificates or CAs). */
export function loadPinned(pem: string): pkijs.Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => pkijs.Certificate.fromBER(toAb(new crypto.X509Certificate(b).raw)));
}

/**
 * RFC 3161 client (docs/proofs.md "Timestamps"): a SHA-256 imprint of the bytes, a fresh 64-bit
 * nonce, certReq; tries each configured TSA in order. An answer is accepted only when granted, signed
 * by a certificate that is one of the pinned ones or chains to one and is allowed to time-stamp, for
 * this imprint and this nonce. No TSA answering is TSA_UNAVAILABLE (the caller keeps the item
 * pending); a refused answer is TSA_INVALID.
 */
export class TsaClient {
  private readonly pinned: pkijs.Certificate[];

  constructor(
    private readonly cfg: Pick<TsaConfig, 'urls' | 'timeoutMs' | 'policy'>,
    pinnedPem: string,
  ) {
    engine();
    this.pinned = loadPinned(pinnedPem);
    if (!this.pinned.length) throw tsaErrors.invalid('seals.tsa.caFile holds no certificate');
  }

  get configured(): boolean {
    return this.cfg.urls.length > 0;
  }

  async timestamp(data: Buffer): Promise<Timestamp> {
    if (!this.configured) throw tsaErrors.unavailable('no TSA is configured (seals.tsa.urls)');
    const failures: string[] = [];
    for (const url of this.cfg.urls) {
      const nonce = crypto.randomBytes(8);
      nonce[0]! &= 0x7f;
      if (nonce[0] === 0) nonce[0] = 1;
      const req = new pkijs.TimeStampReq({
        version: 1,
        messageImprint: new pkijs.MessageImprint({
          hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA256 }),
          hashedMessage: new asn1js.OctetString({ valueHex: toAb(crypto.createHash('sha256').update(data).digest()) }),
        }),
        nonce: new asn1js.Integer({ valueHex: toAb(nonce) }),
        certReq: true,
        ...(this.cfg.policy ? { reqPolicy: this.cfg.policy } : {}),
      });
      let body: Buffer;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
          body: Buffer.from(req.toSchema().toBER()),
          signal: AbortSignal.timeout(this.cfg.timeoutMs),
        });
        if (!res.ok) {
          failures.push(`${hostOf(url)}: HTTP ${res.status}`);
          continue;
        }
        body = Buffer.from(await res.arrayBuffer());
      } catch (e) {
        failures.push(
          `${hostOf(url)}: ${(e as Error).name === 'TimeoutError' ? 'timed out' : ((e as { cause?: { code?: string } }).cause?.code ?? 'unreachable')}`,
        );
        continue;
      }
      const t = await this.check(data, body, nonce);
      return { ...t, url };
    }
    throw tsaErrors.unavailable(failures.join('; '));
  }

  /** Checks a TimeStampResp over `data` (and, when given, the nonce asked for). */
  async check(data: Buffer, response: Buffer, nonce?: Buffer): Promise<Omit<Timestamp, 'url'>> {
    let resp: pkijs.TimeStampResp;
    try {
      resp = pkijs.TimeStampResp.fromBER(toAb(response));
    } catch {
      throw tsaErrors.invalid('not a TimeStampResp');
    }
    const status = resp.status.status;
    if (status !== pkijs.PKIStatus.granted && status !== pkijs.PKIStatus.grantedWithMods)
      throw tsaErrors.invalid(
        `status ${status}${resp.status.statusStrings?.length ? ` (${resp.status.statusStrings.map((s) => s.valueBlock.value).join('; ')})` : ''}`,
      );
    if (!resp.timeStampToken) throw tsaErrors.invalid('granted without a token');
    const signed = new pkijs.SignedData({ schema: resp.timeStampToken.content });
    const econtent = signed.encapContentInfo.eContent;
    if (!econtent) throw tsaErrors.invalid('the token holds no TSTInfo');
    const tst = pkijs.TSTInfo.fromBER(econtent.getValue());
    if (tst.messageImprint.hashAlgorithm.algorithmId !== SHA256) throw tsaErrors.invalid('the imprint is not SHA-256');
    const imprint = Buffer.from(tst.messageImprint.hashedMessage.valueBlock.valueHexView);
    if (!imprint.equals(crypto.createHash('sha256').update(data).digest()))
      throw tsaErrors.invalid('the token is for other bytes (imprint mismatch)');
    if (nonce) {
      const got = tst.nonce ? Buffer.from(tst.nonce.valueBlock.valueHexView) : undefined;
      if (!got || !stripZeros(got).equals(stripZeros(nonce)))
        throw tsaErrors.invalid('the nonce does not match the request (replayed answer)');
    }
    let r: pkijs.SignedDataVerifyResult;
    try {
      r = await signed.verify({
        signer: 0,
        data: toAb(data),
        trustedCerts: this.pinned,
        checkChain: true,
        extendedMode: true,
        checkDate: tst.genTime,
      });
    } catch (e) {
      throw tsaErrors.invalid(
        `signature or certificate not accepted (${(e as { message?: string }).message ?? 'error'})`,
      );
    }
    if (!r.signatureVerified || !r.signerCertificateVerified || !r.signerCertificate)
      throw tsaErrors.invalid('signature or certificate not accepted');
    const eku = r.signerCertificate.extensions?.find((x) => x.extnID === '2.5.29.37');
    const usages = (eku?.parsedValue as { keyPurposes?: string[] } | undefined)?.keyPurposes ?? [];
    if (!usages.includes(ID_KP_TIMESTAMPING))
      throw tsaErrors.invalid("the signer's certificate is not for time-stamping (extended key usage)");
    return {
      response,
      genTime: tst.genTime,
      serial: Buffer.from(tst.serialNumber.valueBlock.valueHexView).toString('hex'),
    };
  }
}

const stripZeros = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/** host[:port] of a TSA URL, for messages (never its path or query, which may carry credentials) */
const hostOf = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return 'TSA';
  }
};
