import crypto from 'node:crypto';
import type { PKCS11 } from 'pkcs11js';
import { keysErrors } from '../errors.js';
import type { KekAttributes } from '../types.js';
import { pk } from './library.js';

export type WrapMechanism = 'CKM_AES_KEY_WRAP_PAD' | 'CKM_AES_GCM';

export const attr = (type: number, value?: number | boolean | string | Buffer) =>
  value === undefined ? { type } : { type, value };
export const bool = (b: Buffer | undefined): boolean => b !== undefined && b.length > 0 && b[0] !== 0;
const MAC_NAME = /^[a-z0-9][a-z0-9._-]{0,47}$/;

/**
 * The keys Coffre keeps in the HSM, by label: KEK versions `<kekLabel>-<n>` (AES-256, wrap/unwrap
 * or encrypt/decrypt) and HMAC keys `<kekLabel>-mac-<name>`. Object handles are cached by label
 * and forgotten after any re-login or reconnect (`forget`). Every call runs on the caller's
 * session, synchronously (this runs on the PKCS#11 worker thread).
 */
export class KekStore {
  private readonly handles = new Map<string, Buffer>();
  versions: number[] = [];
  private readonly mech = new Map<number, WrapMechanism>();
  /** performance.now() of the last full listing */
  readAt = 0;
  private readonly prefix: string;
  /** a KEK version was looked up and is not in the HSM (the customer pulled it): data keys must go */
  onMissing: (label: string) => void = () => undefined;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  label(version: number): string {
    return `${this.prefix}-${version}`;
  }

  macLabel(keyName: string): string {
    if (!MAC_NAME.test(keyName)) throw keysErrors.usage(`invalid MAC key name "${keyName}"`);
    return `${this.prefix}-mac-${keyName}`;
  }

  current(): number {
    const v = this.versions[this.versions.length - 1];
    if (v === undefined)
      throw keysErrors.unavailable(
        `no key-encryption key labelled ${this.prefix}-<n> in the HSM`,
        'run `coffre keys init`, or check keys.kekLabel',
      );
    return v;
  }

  mechanismOf(version: number): WrapMechanism | undefined {
    return this.mech.get(version);
  }

  forget(label?: string): void {
    if (label === undefined) this.handles.clear();
    else this.handles.delete(label);
  }

  find(p: PKCS11, s: Buffer, label: string): Buffer[] {
    p.C_FindObjectsInit(s, [
      attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
      attr(pk.CKA_TOKEN, true),
      attr(pk.CKA_LABEL, label),
    ]);
    try {
      return p.C_FindObjects(s, 16);
    } finally {
      p.C_FindObjectsFinal(s);
    }
  }

  kekHandle(p: PKCS11, s: Buffer, version: number): Buffer {
    const label = this.label(version);
    const cached = this.handles.get(label);
    if (cached) return cached;
    const found = this.find(p, s, label);
    if (found.length === 0) {
      this.onMissing(label);
      throw keysErrors.unavailable(
        `KEK ${label} is not in the HSM (destroyed, or another token)`,
        'check keys.tokenLabel and keys.kekLabel',
      );
    }
    if (found.length > 1)
      throw keysErrors.unavailable(
        `${found.length} keys in the HSM are labelled ${label}`,
        'remove the duplicate from the HSM',
      );
    this.handles.set(label, found[0]!);
    return found[0]!;
  }

  /** The HMAC key `label`, created on first use unless `create` is false (generic secret, non-extractable, sign/verify). */
  macHandle(p: PKCS11, s: Buffer, label: string, create = true, keyName = label): Buffer {
    const cached = this.handles.get(label);
    if (cached) return cached;
    let found = this.find(p, s, label);
    if (found.length === 0 && !create) throw keysErrors.keyDestroyed(keyName);
    if (found.length === 0) {
      p.C_GenerateKey(s, { mechanism: pk.CKM_GENERIC_SECRET_KEY_GEN }, [
        attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
        attr(pk.CKA_KEY_TYPE, pk.CKK_GENERIC_SECRET),
        attr(pk.CKA_VALUE_LEN, 32),
        attr(pk.CKA_TOKEN, true),
        attr(pk.CKA_PRIVATE, true),
        attr(pk.CKA_SENSITIVE, true),
        attr(pk.CKA_EXTRACTABLE, false),
        attr(pk.CKA_SIGN, true),
        attr(pk.CKA_VERIFY, true),
        attr(pk.CKA_ENCRYPT, false),
        attr(pk.CKA_DECRYPT, false),
        attr(pk.CKA_WRAP, false),
        attr(pk.CKA_UNWRAP, false),
        attr(pk.CKA_DERIVE, false),
        attr(pk.CKA_ID, crypto.randomBytes(16)),
        attr(pk.CKA_LABEL, label),
      ]);
      found = this.find(p, s, label);
    }
    // two processes may have created it at once: every process picks the one with the lowest CKA_ID
    const chosen =
      found.length === 1
        ? found[0]!
        : found
            .map((h) => ({ h, id: p.C_GetAttributeValue(s, h, [attr(pk.CKA_ID)])[0]!.value }))
            .sort((a, b) => Buffer.compare(a.id, b.id))[0]!.h;
    this.handles.set(label, chosen);
    return chosen;
  }

  /** Destroys every HMAC key labelled `label`; false when there was none. */
  destroyMac(p: PKCS11, s: Buffer, label: string): boolean {
    const found = this.find(p, s, label);
    for (const h of found) p.C_DestroyObject(s, h);
    this.handles.delete(label);
    return found.length > 0;
  }

  /** Lists `<kekLabel>-<n>` keys (labels read back from the HSM) and the mechanism of each. */
  readVersions(p: PKCS11, s: Buffer): void {
    const re = new RegExp(`^${this.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)$`);
    p.C_FindObjectsInit(s, [
      attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
      attr(pk.CKA_TOKEN, true),
      attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
    ]);
    const all: Buffer[] = [];
    try {
      for (;;) {
        const batch = p.C_FindObjects(s, 64);
        if (batch.length === 0) break;
        all.push(...batch);
      }
    } finally {
      p.C_FindObjectsFinal(s);
    }
    const versions: number[] = [];
    this.mech.clear();
    for (const h of all) {
      const [label, wrap, enc] = p.C_GetAttributeValue(s, h, [
        attr(pk.CKA_LABEL),
        attr(pk.CKA_WRAP),
        attr(pk.CKA_ENCRYPT),
      ]);
      const m = re.exec(label!.value.toString('utf8'));
      if (!m) continue;
      const v = Number(m[1]);
      versions.push(v);
      this.handles.set(this.label(v), h);
      this.mech.set(
        v,
        bool(wrap!.value) ? 'CKM_AES_KEY_WRAP_PAD' : bool(enc!.value) ? 'CKM_AES_GCM' : 'CKM_AES_KEY_WRAP_PAD',
      );
    }
    const before = this.versions;
    this.versions = [...new Set(versions)].sort((a, b) => a - b);
    this.readAt = performance.now();
    // the version in use vanished from the HSM (nobody rotated): it was pulled
    const cur = before[before.length - 1];
    if (cur !== undefined && !this.versions.includes(cur) && !this.versions.some((v) => v > cur))
      this.onMissing(this.label(cur));
  }

  /** The wrapping mechanism for a new KEK: what the configuration asks, else what the token offers. */
  chooseMechanism(p: PKCS11, slot: Buffer, want: 'auto' | WrapMechanism): WrapMechanism {
    const has = (m: number, flags: number) => {
      try {
        return (p.C_GetMechanismInfo(slot, m).flags & flags) === flags;
      } catch {
        return false;
      }
    };
    const kwp = has(pk.CKM_AES_KEY_WRAP_PAD, pk.CKF_WRAP | pk.CKF_UNWRAP);
    const gcm = has(pk.CKM_AES_GCM, pk.CKF_ENCRYPT | pk.CKF_DECRYPT);
    if (want === 'CKM_AES_KEY_WRAP_PAD' || (want === 'auto' && kwp)) {
      if (!kwp)
        throw keysErrors.unavailable('the token does not wrap with CKM_AES_KEY_WRAP_PAD', 'check keys.wrapMechanism');
      return 'CKM_AES_KEY_WRAP_PAD';
    }
    if (!gcm)
      throw keysErrors.unavailable(
        'the token offers neither CKM_AES_KEY_WRAP_PAD (wrap) nor CKM_AES_GCM (encrypt)',
        'use an HSM with AES key wrapping',
      );
    return 'CKM_AES_GCM';
  }

  /** AES-256 KEK generated inside the HSM: never extractable, sensitive, only the usages it needs. */
  generate(p: PKCS11, s: Buffer, label: string, mech: WrapMechanism): Buffer {
    const kwp = mech === 'CKM_AES_KEY_WRAP_PAD';
    const h = p.C_GenerateKey(s, { mechanism: pk.CKM_AES_KEY_GEN }, [
      attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
      attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
      attr(pk.CKA_VALUE_LEN, 32),
      attr(pk.CKA_TOKEN, true),
      attr(pk.CKA_PRIVATE, true),
      attr(pk.CKA_SENSITIVE, true),
      attr(pk.CKA_EXTRACTABLE, false),
      attr(pk.CKA_MODIFIABLE, false),
      attr(pk.CKA_WRAP, kwp),
      attr(pk.CKA_UNWRAP, kwp),
      attr(pk.CKA_ENCRYPT, !kwp),
      attr(pk.CKA_DECRYPT, !kwp),
      attr(pk.CKA_SIGN, false),
      attr(pk.CKA_VERIFY, false),
      attr(pk.CKA_DERIVE, false),
      attr(pk.CKA_ID, crypto.randomBytes(16)),
      attr(pk.CKA_LABEL, label),
    ]);
    this.handles.set(label, h);
    return h;
  }

  destroy(p: PKCS11, s: Buffer, version: number): void {
    const label = this.label(version);
    for (const h of this.find(p, s, label)) p.C_DestroyObject(s, h);
    this.handles.delete(label);
  }

  attributes(p: PKCS11, s: Buffer, version: number): KekAttributes {
    const h = this.kekHandle(p, s, version);
    const types = [
      pk.CKA_LABEL,
      pk.CKA_KEY_TYPE,
      pk.CKA_VALUE_LEN,
      pk.CKA_TOKEN,
      pk.CKA_PRIVATE,
      pk.CKA_EXTRACTABLE,
      pk.CKA_SENSITIVE,
      pk.CKA_NEVER_EXTRACTABLE,
      pk.CKA_ALWAYS_SENSITIVE,
      pk.CKA_LOCAL,
      pk.CKA_MODIFIABLE,
      pk.CKA_WRAP,
      pk.CKA_UNWRAP,
      pk.CKA_ENCRYPT,
      pk.CKA_DECRYPT,
      pk.CKA_SIGN,
      pk.CKA_VERIFY,
      pk.CKA_DERIVE,
    ];
    const v = p
      .C_GetAttributeValue(
        s,
        h,
        types.map((t) => attr(t)),
      )
      .map((a) => a.value);
    const num = (b: Buffer | undefined) =>
      b && b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b && b.length >= 4 ? b.readUInt32LE(0) : -1;
    const keyType = num(v[1]);
    const wrap = bool(v[11]);
    return {
      label: v[0]!.toString('utf8'),
      version,
      keyType: keyType === pk.CKK_AES ? 'AES' : `0x${keyType.toString(16)}`,
      valueLen: num(v[2]),
      token: bool(v[3]),
      private: bool(v[4]),
      extractable: bool(v[5]),
      sensitive: bool(v[6]),
      neverExtractable: bool(v[7]),
      alwaysSensitive: bool(v[8]),
      local: bool(v[9]),
      modifiable: bool(v[10]),
      wrap,
      unwrap: bool(v[12]),
      encrypt: bool(v[13]),
      decrypt: bool(v[14]),
      sign: bool(v[15]),
      verify: bool(v[16]),
      derive: bool(v[17]),
      mechanism: wrap ? 'CKM_AES_KEY_WRAP_PAD' : 'CKM_AES_GCM',
    };
  }
}
