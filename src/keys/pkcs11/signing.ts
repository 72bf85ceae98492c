import crypto from 'node:crypto';
import type { PKCS11 } from 'pkcs11js';
import { keysErrors } from '../errors.js';
import type { SigningKeyAttributes } from '../types.js';
import { attr, bool } from './kek.js';
import { pk } from './library.js';

/** DER of the OID prime256v1 (secp256r1), the curve of every signing key */
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const NAME = /^[a-z0-9][a-z0-9._-]{0,47}$/;

/**
 * ECDSA P-256 signing key pairs `<kekLabel>-sign-<name>`: private half on the token, sensitive and
 * never extractable, sign only; public half on the token, verify only; same CKA_ID. Handles are
 * cached and forgotten after any re-login or reconnect. Runs on the PKCS#11 worker thread.
 */
export class SigningKeyStore {
  private readonly handles = new Map<string, { priv: Buffer; spki: Buffer }>();

  private readonly prefix: string;

  // no parameter properties: the worker thread runs this file with type stripping only
  constructor(prefix: string) {
    this.prefix = prefix;
  }

  label(name: string): string {
    if (!NAME.test(name)) throw keysErrors.usage(`invalid signing key name "${name}"`);
    return `${this.prefix}-sign-${name}`;
  }

  forget(): void {
    this.handles.clear();
  }

  private find(p: PKCS11, s: Buffer, cls: number, label: string): Buffer[] {
    p.C_FindObjectsInit(s, [attr(pk.CKA_CLASS, cls), attr(pk.CKA_TOKEN, true), attr(pk.CKA_LABEL, label)]);
    try {
      return p.C_FindObjects(s, 16);
    } finally {
      p.C_FindObjectsFinal(s);
    }
  }

  /** The pair `name` (created when missing and `create`): its private handle and public key (SPKI DER). */
  pair(p: PKCS11, s: Buffer, name: string, create: boolean): { priv: Buffer; spki: Buffer } {
    const label = this.label(name);
    const cached = this.handles.get(label);
    if (cached) return cached;
    let privs = this.find(p, s, pk.CKO_PRIVATE_KEY, label);
    if (privs.length === 0) {
      if (!create) throw keysErrors.keyDestroyed(label);
      const id = crypto.randomBytes(16);
      p.C_GenerateKeyPair(
        s,
        { mechanism: pk.CKM_EC_KEY_PAIR_GEN },
        [
          attr(pk.CKA_TOKEN, true),
          attr(pk.CKA_PRIVATE, false),
          attr(pk.CKA_VERIFY, true),
          attr(pk.CKA_ENCRYPT, false),
          attr(pk.CKA_WRAP, false),
          attr(pk.CKA_EC_PARAMS, P256),
          attr(pk.CKA_LABEL, label),
          attr(pk.CKA_ID, id),
        ],
        [
          attr(pk.CKA_TOKEN, true),
          attr(pk.CKA_PRIVATE, true),
          attr(pk.CKA_SENSITIVE, true),
          attr(pk.CKA_EXTRACTABLE, false),
          attr(pk.CKA_SIGN, true),
          attr(pk.CKA_DECRYPT, false),
          attr(pk.CKA_UNWRAP, false),
          attr(pk.CKA_DERIVE, false),
          attr(pk.CKA_LABEL, label),
          attr(pk.CKA_ID, id),
        ],
      );
      privs = this.find(p, s, pk.CKO_PRIVATE_KEY, label);
    }
    // two processes may have created one at once: every process picks the pair with the lowest CKA_ID
    const ids = privs
      .map((h) => ({ h, id: Buffer.from(p.C_GetAttributeValue(s, h, [attr(pk.CKA_ID)])[0]!.value) }))
      .sort((a, b) => Buffer.compare(a.id, b.id));
    const chosen = ids[0]!;
    const pub = this.find(p, s, pk.CKO_PUBLIC_KEY, label).find((h) =>
      Buffer.from(p.C_GetAttributeValue(s, h, [attr(pk.CKA_ID)])[0]!.value).equals(chosen.id),
    );
    if (!pub)
      throw keysErrors.unavailable(
        `the public half of signing key ${label} is missing from the HSM`,
        'restore it, or destroy the private half to make a new pair',
      );
    const spki = spkiOf(Buffer.from(p.C_GetAttributeValue(s, pub, [attr(pk.CKA_EC_POINT)])[0]!.value));
    const entry = { priv: chosen.h, spki };
    this.handles.set(label, entry);
    return entry;
  }

  /** ECDSA over a SHA-256 digest inside the HSM: raw r‖s (64 bytes). */
  signDigest(p: PKCS11, s: Buffer, name: string, digest: Buffer): Buffer {
    if (digest.length !== 32) throw keysErrors.usage(`a SHA-256 digest is 32 bytes (got ${digest.length})`);
    const { priv } = this.pair(p, s, name, false);
    p.C_SignInit(s, { mechanism: pk.CKM_ECDSA }, priv);
    return Buffer.from(p.C_Sign(s, digest, Buffer.alloc(64)));
  }

  attributes(p: PKCS11, s: Buffer, name: string): SigningKeyAttributes {
    const label = this.label(name);
    const { priv } = this.pair(p, s, name, false);
    const [sens, ext, as, ne, tok, prv] = p.C_GetAttributeValue(s, priv, [
      attr(pk.CKA_SENSITIVE),
      attr(pk.CKA_EXTRACTABLE),
      attr(pk.CKA_ALWAYS_SENSITIVE),
      attr(pk.CKA_NEVER_EXTRACTABLE),
      attr(pk.CKA_TOKEN),
      attr(pk.CKA_PRIVATE),
    ]);
    return {
      label,
      sensitive: bool(sens!.value),
      extractable: bool(ext!.value),
      alwaysSensitive: bool(as!.value),
      neverExtractable: bool(ne!.value),
      token: bool(tok!.value),
      private: bool(prv!.value),
    };
  }
}

/** CKA_EC_POINT (a DER OCTET STRING holding 04‖X‖Y, or the bare point) → SubjectPublicKeyInfo DER. */
function spkiOf(ecPoint: Buffer): Buffer {
  let point = ecPoint;
  if (point.length === 67 && point[0] === 0x04 && point[1] === 0x41) point = point.subarray(2);
  if (point.length !== 65 || point[0] !== 0x04)
    throw keysErrors.unavailable('the HSM returned an EC point that is not an uncompressed P-256 point');
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33).toString('base64url'),
  };
  return crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}
