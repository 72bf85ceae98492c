import crypto from 'node:crypto';
import type { PKCS11 } from 'pkcs11js';
import { keysErrors } from '../errors.js';
import { attr, type WrapMechanism } from './kek.js';
import { pk } from './library.js';

/**
 * The HSM operations on data keys and MACs, one PKCS#11 call sequence each, on the caller's
 * session (synchronous: this runs on the PKCS#11 worker thread). Formats: docs/formats.md
 * "Wrapped data key".
 */

export const GCM_IV_BYTES = 12;
export const DEK_BYTES = 32;

const gcm = (iv: Buffer, label: string) => ({
  mechanism: pk.CKM_AES_GCM,
  parameter: {
    type: pk.CK_PARAMS_AES_GCM,
    iv,
    ivBits: iv.length * 8,
    aad: Buffer.from(`coffre-dek\0${label}`),
    tagBits: 128,
  },
});

/** A data key as a session object, for wrapping (extractable, not sensitive, never on the token). */
const dekTemplate = (sensitive: boolean) => [
  attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
  attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
  attr(pk.CKA_TOKEN, false),
  attr(pk.CKA_PRIVATE, true),
  attr(pk.CKA_SENSITIVE, sensitive),
  attr(pk.CKA_EXTRACTABLE, true),
];

export function wrapDek(p: PKCS11, s: Buffer, kek: Buffer, mech: WrapMechanism, label: string, dek: Buffer): Buffer {
  if (mech === 'CKM_AES_GCM') {
    const iv = crypto.randomBytes(GCM_IV_BYTES);
    p.C_EncryptInit(s, gcm(iv, label), kek);
    return Buffer.concat([iv, p.C_Encrypt(s, dek, Buffer.alloc(dek.length + 16))]);
  }
  const tmp = p.C_CreateObject(s, [...dekTemplate(false), attr(pk.CKA_VALUE, dek)]);
  try {
    return Buffer.from(p.C_WrapKey(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, kek, tmp, Buffer.alloc(dek.length + 16)));
  } finally {
    p.C_DestroyObject(s, tmp);
  }
}

export function unwrapDek(p: PKCS11, s: Buffer, kek: Buffer, mech: string, label: string, wrapped: Buffer): Buffer {
  if (mech === 'CKM_AES_GCM') {
    if (wrapped.length !== GCM_IV_BYTES + DEK_BYTES + 16)
      throw keysErrors.integrity('wrapped key has the wrong length');
    p.C_DecryptInit(s, gcm(wrapped.subarray(0, GCM_IV_BYTES), label), kek);
    return Buffer.from(p.C_Decrypt(s, wrapped.subarray(GCM_IV_BYTES), Buffer.alloc(wrapped.length)));
  }
  const h = p.C_UnwrapKey(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, kek, wrapped, dekTemplate(false));
  try {
    return Buffer.from(p.C_GetAttributeValue(s, h, [attr(pk.CKA_VALUE)])[0]!.value);
  } finally {
    p.C_DestroyObject(s, h);
  }
}

/** Key-wrap-pad on both sides: unwrapped into a sensitive session object and wrapped again, never in host memory. */
export function rewrapInside(p: PKCS11, s: Buffer, from: Buffer, to: Buffer, wrapped: Buffer): Buffer {
  const h = p.C_UnwrapKey(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, from, wrapped, dekTemplate(true));
  try {
    return Buffer.from(p.C_WrapKey(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, to, h, Buffer.alloc(DEK_BYTES + 16)));
  } finally {
    p.C_DestroyObject(s, h);
  }
}

export function hmac(p: PKCS11, s: Buffer, key: Buffer, data: Buffer): Buffer {
  p.C_SignInit(s, { mechanism: pk.CKM_SHA256_HMAC }, key);
  return Buffer.from(p.C_Sign(s, data, Buffer.alloc(32)));
}

export function verifyHmac(p: PKCS11, s: Buffer, key: Buffer, data: Buffer, mac: Buffer): boolean {
  p.C_VerifyInit(s, { mechanism: pk.CKM_SHA256_HMAC }, key);
  return p.C_Verify(s, data, mac);
}
