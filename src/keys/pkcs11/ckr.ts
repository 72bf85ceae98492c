/**
 * PKCS#11 return codes: parsing them out of pkcs11js errors and classifying them.
 *
 * pkcs11js throws `Pkcs11Error` with `.code` (a number) and a message `CKR_NAME`, but some paths
 * (async callbacks, NativeError) only carry the text `CKR_NAME:n`; both are handled.
 */

/** The subset of CKR codes we name (PKCS#11 v2.40, table 10). */
export const CKR: Record<number, string> = {
  0x0: 'CKR_OK',
  0x1: 'CKR_CANCEL',
  0x2: 'CKR_HOST_MEMORY',
  0x3: 'CKR_SLOT_ID_INVALID',
  0x5: 'CKR_GENERAL_ERROR',
  0x6: 'CKR_FUNCTION_FAILED',
  0x7: 'CKR_ARGUMENTS_BAD',
  0x10: 'CKR_ATTRIBUTE_READ_ONLY',
  0x11: 'CKR_ATTRIBUTE_SENSITIVE',
  0x12: 'CKR_ATTRIBUTE_TYPE_INVALID',
  0x13: 'CKR_ATTRIBUTE_VALUE_INVALID',
  0x20: 'CKR_DATA_INVALID',
  0x21: 'CKR_DATA_LEN_RANGE',
  0x30: 'CKR_DEVICE_ERROR',
  0x31: 'CKR_DEVICE_MEMORY',
  0x32: 'CKR_DEVICE_REMOVED',
  0x40: 'CKR_ENCRYPTED_DATA_INVALID',
  0x41: 'CKR_ENCRYPTED_DATA_LEN_RANGE',
  0x50: 'CKR_FUNCTION_CANCELED',
  0x54: 'CKR_FUNCTION_NOT_SUPPORTED',
  0x60: 'CKR_KEY_HANDLE_INVALID',
  0x62: 'CKR_KEY_SIZE_RANGE',
  0x63: 'CKR_KEY_TYPE_INCONSISTENT',
  0x68: 'CKR_KEY_FUNCTION_NOT_PERMITTED',
  0x6a: 'CKR_KEY_UNEXTRACTABLE',
  0x70: 'CKR_MECHANISM_INVALID',
  0x71: 'CKR_MECHANISM_PARAM_INVALID',
  0x82: 'CKR_OBJECT_HANDLE_INVALID',
  0x90: 'CKR_OPERATION_ACTIVE',
  0x91: 'CKR_OPERATION_NOT_INITIALIZED',
  0xa0: 'CKR_PIN_INCORRECT',
  0xa1: 'CKR_PIN_INVALID',
  0xa2: 'CKR_PIN_LEN_RANGE',
  0xa3: 'CKR_PIN_EXPIRED',
  0xa4: 'CKR_PIN_LOCKED',
  0xb0: 'CKR_SESSION_CLOSED',
  0xb1: 'CKR_SESSION_COUNT',
  0xb3: 'CKR_SESSION_HANDLE_INVALID',
  0xb5: 'CKR_SESSION_READ_ONLY',
  0xc0: 'CKR_SIGNATURE_INVALID',
  0xc1: 'CKR_SIGNATURE_LEN_RANGE',
  0xd0: 'CKR_TEMPLATE_INCOMPLETE',
  0xd1: 'CKR_TEMPLATE_INCONSISTENT',
  0xe0: 'CKR_TOKEN_NOT_PRESENT',
  0xe1: 'CKR_TOKEN_NOT_RECOGNIZED',
  0xe2: 'CKR_TOKEN_WRITE_PROTECTED',
  0xf0: 'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
  0x100: 'CKR_USER_ALREADY_LOGGED_IN',
  0x101: 'CKR_USER_NOT_LOGGED_IN',
  0x102: 'CKR_USER_PIN_NOT_INITIALIZED',
  0x103: 'CKR_USER_TYPE_INVALID',
  0x110: 'CKR_WRAPPED_KEY_INVALID',
  0x112: 'CKR_WRAPPED_KEY_LEN_RANGE',
  0x113: 'CKR_WRAPPING_KEY_HANDLE_INVALID',
  0x150: 'CKR_BUFFER_TOO_SMALL',
  0x190: 'CKR_CRYPTOKI_NOT_INITIALIZED',
  0x191: 'CKR_CRYPTOKI_ALREADY_INITIALIZED',
};

/** The CKR name of an error thrown by pkcs11js, or undefined when it is not a PKCS#11 error. */
export function ckrOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const err = e as { message?: unknown; code?: unknown; stack?: unknown };
  const text = `${typeof err.message === 'string' ? err.message : ''}\n${typeof err.stack === 'string' ? err.stack : ''}`;
  const m = /\b(CKR_[A-Z0-9_]+)(?::(\d+))?/.exec(text);
  if (m) return m[1];
  if (typeof err.code === 'number' && err.code > 0 && CKR[err.code]) return CKR[err.code];
  return undefined;
}

/**
 * Codes that mean "the connection to the HSM is gone": only these trigger a reconnect
 * (Finalize, Initialize, login, key lookup). Integrity failures are never retried.
 */
export const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'CKR_DEVICE_ERROR',
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_MEMORY',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_SLOT_ID_INVALID',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

/** The token forgot our login (another process logged out, token reset): log in again. */
export const RELOGIN_CODES: ReadonlySet<string> = new Set(['CKR_USER_NOT_LOGGED_IN']);

/** Cached object handles are stale: look keys up again by label. */
export const STALE_HANDLE_CODES: ReadonlySet<string> = new Set([
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_WRAPPING_KEY_HANDLE_INVALID',
  'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
]);

/** The PIN was refused: never retried by itself (retrying a wrong PIN would lock the token). */
export const PIN_CODES: ReadonlySet<string> = new Set([
  'CKR_PIN_INCORRECT',
  'CKR_PIN_INVALID',
  'CKR_PIN_LEN_RANGE',
  'CKR_PIN_EXPIRED',
  'CKR_PIN_LOCKED',
  'CKR_USER_PIN_NOT_INITIALIZED',
]);

/**
 * Codes an unwrap/decrypt/verify returns for input that does not authenticate. CKR_GENERAL_ERROR is
 * here on purpose: SoftHSM answers a tampered CKM_AES_KEY_WRAP_PAD blob with it.
 */
export const INTEGRITY_CODES: ReadonlySet<string> = new Set([
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
  'CKR_SIGNATURE_INVALID',
  'CKR_SIGNATURE_LEN_RANGE',
]);
