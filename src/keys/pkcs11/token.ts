import { keysErrors } from '../errors.js';
import { ckrOf } from './ckr.js';
import { pk, padLabel, slotId, trimPkcs11, type Pkcs11Library } from './library.js';

export interface TokenRef {
  slot?: number | undefined;
  tokenLabel?: string | undefined;
}

export interface TokenDescription {
  slotId: number;
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
}

function describe(lib: Pkcs11Library, h: Buffer): TokenDescription {
  const t = lib.p.C_GetTokenInfo(h);
  return {
    slotId: slotId(h),
    label: trimPkcs11(t.label),
    serial: trimPkcs11(t.serialNumber),
    manufacturer: trimPkcs11(t.manufacturerID),
    model: trimPkcs11(t.model),
  };
}

/**
 * Finds the slot of the configured token: by `keys.slot`, else by `keys.tokenLabel`, else the only
 * initialized token. Throws KEYS_UNAVAILABLE naming the key to check.
 */
export function findSlot(lib: Pkcs11Library, ref: TokenRef): { handle: Buffer; token: TokenDescription } {
  let slots: Buffer[];
  try {
    slots = lib.p.C_GetSlotList(true);
  } catch (e) {
    throw keysErrors.unavailable(
      `cannot list PKCS#11 slots (${ckrOf(e) ?? (e as Error).message})`,
      'check that the HSM is reachable',
      e,
    );
  }
  const initialized = slots.filter((h) => (lib.p.C_GetTokenInfo(h).flags & pk.CKF_TOKEN_INITIALIZED) !== 0);
  if (ref.slot !== undefined) {
    const h = slots.find((s) => slotId(s) === ref.slot);
    if (!h)
      throw keysErrors.unavailable(`no token in PKCS#11 slot ${ref.slot} (CKR_TOKEN_NOT_PRESENT)`, 'check keys.slot');
    const token = describe(lib, h);
    if (ref.tokenLabel !== undefined && token.label !== ref.tokenLabel) {
      throw keysErrors.unavailable(
        `slot ${ref.slot} holds token "${token.label}", not "${ref.tokenLabel}"`,
        'check keys.slot and keys.tokenLabel',
      );
    }
    return { handle: h, token };
  }
  if (ref.tokenLabel !== undefined) {
    const found = initialized.filter((h) => trimPkcs11(lib.p.C_GetTokenInfo(h).label) === ref.tokenLabel);
    if (found.length === 0)
      throw keysErrors.unavailable(
        `no token labelled "${ref.tokenLabel}" (CKR_TOKEN_NOT_PRESENT)`,
        'check keys.tokenLabel and that the HSM is reachable',
      );
    if (found.length > 1)
      throw keysErrors.unavailable(
        `${found.length} tokens are labelled "${ref.tokenLabel}"`,
        'set keys.slot to choose one',
      );
    return { handle: found[0]!, token: describe(lib, found[0]!) };
  }
  if (initialized.length === 1) return { handle: initialized[0]!, token: describe(lib, initialized[0]!) };
  throw keysErrors.unavailable(
    `${initialized.length} initialized tokens and neither keys.slot nor keys.tokenLabel is set`,
    'set keys.tokenLabel (or keys.slot)',
  );
}

/**
 * Initializes a fresh token on the first free (uninitialized) slot: C_InitToken with the SO PIN,
 * then C_InitPIN for the user PIN. PINs travel only through the PKCS#11 API, never a command line.
 * Used for the default SoftHSM2 token (`coffre init`) and by the test helper.
 */
export function initToken(lib: Pkcs11Library, label: string, soPin: string, userPin: string): TokenDescription {
  const free = lib.p.C_GetSlotList(true).find((h) => (lib.p.C_GetTokenInfo(h).flags & pk.CKF_TOKEN_INITIALIZED) === 0);
  if (!free)
    throw keysErrors.unavailable(
      'no free slot to create a token in',
      'SoftHSM2 offers one free slot; check keys.softhsmConfFile',
    );
  try {
    lib.p.C_InitToken(free, soPin, padLabel(label));
  } catch (e) {
    throw keysErrors.unavailable(
      `cannot create the token (${ckrOf(e) ?? (e as Error).message})`,
      'check the SoftHSM2 token directory',
      e,
    );
  }
  // SoftHSM2 moves the new token to a new slot id: look it up by label
  const { handle, token } = findSlot(lib, { tokenLabel: label });
  const s = lib.p.C_OpenSession(handle, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION);
  try {
    lib.p.C_Login(s, pk.CKU_SO, soPin);
    lib.p.C_InitPIN(s, userPin);
    lib.p.C_Logout(s);
  } catch (e) {
    throw keysErrors.unavailable(
      `cannot set the token's user PIN (${ckrOf(e) ?? (e as Error).message})`,
      'check the SoftHSM2 token directory',
      e,
    );
  } finally {
    lib.p.C_CloseSession(s);
  }
  return token;
}
