import * as openpgp from 'openpgp';
import { backupErrors } from '../errors.js';

/**
 * OpenPGP.js's part of the backup format: escrow keys (checked so that stock GnuPG 2.2 can read
 * what we encrypt to them), the PKESK packets that give each part's session key to the escrow
 * keys. (Parts themselves are written and read by ./seipd.ts.)
 */

/** Nothing newer than RFC 4880 packets: SEIPDv1, PKESK v3, v4 keys. */
const CONFIG = { aeadProtect: false, v6Keys: false } as const;
/** key methods take a whole Config */
const FULL_CONFIG: openpgp.Config = { ...openpgp.config, ...CONFIG };

/** Features subpacket (RFC 9580 §5.2.3.32): 0x01 SEIPDv1, 0x08 SEIPDv2 */
const FEATURE_SEIPDV2 = 0x08;

/** Public-key algorithms GnuPG 2.2 decrypts, with what we require of them. */
const ALLOWED_CURVES = new Set([
  'curve25519Legacy',
  'curve25519',
  'nistP256',
  'nistP384',
  'nistP521',
  'brainpoolP256r1',
  'brainpoolP384r1',
  'brainpoolP512r1',
]);

export interface EscrowKeyInfo {
  /** uppercase hex v4 fingerprint */
  fingerprint: string;
  userIds: string[];
  /** e.g. `rsa 4096`, `ecdh curve25519Legacy` (of the encryption subkey) */
  algorithm: string;
  createdAt: number;
  /** ms, or null when the key does not expire */
  expiresAt: number | null;
  /** the public key, armored (what is stored) */
  armored: string;
}

/**
 * Reads and checks an escrow key. Refused (ESCROW_KEY_REFUSED, exit 2) with the reason: not a
 * single public key, a private key (never stored), v6, advertising SEIPDv2 (AEAD), no valid
 * encryption subkey (expired, revoked), an algorithm GnuPG 2.2 cannot decrypt, RSA under 3072 bits.
 */
export async function checkEscrowKey(input: string | Uint8Array, now = new Date()): Promise<EscrowKeyInfo> {
  let key: openpgp.Key;
  try {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
    key = text.includes('-----BEGIN PGP')
      ? await openpgp.readKey({ armoredKey: text })
      : await openpgp.readKey({ binaryKey: typeof input === 'string' ? Buffer.from(input, 'latin1') : input });
  } catch (e) {
    throw backupErrors.escrow(
      `not an OpenPGP public key (${(e as Error).message.split('\n')[0]})`,
      'export it with `gpg --export --armor KEYID > escrow.asc`',
    );
  }
  if (key.isPrivate()) {
    throw backupErrors.escrow(
      'this is a PRIVATE key: give the public key only, and keep the private key offline',
      'export it with `gpg --export --armor KEYID`',
    );
  }
  if (key.keyPacket.version !== 4)
    throw backupErrors.escrow(`a v${key.keyPacket.version} key: GnuPG 2.2 cannot read messages to it`);
  let features: Uint8Array | null = null;
  try {
    features = (await key.getPrimaryUser(now, undefined, FULL_CONFIG)).selfCertification.features;
  } catch (e) {
    throw backupErrors.escrow(`the key has no valid user id self-signature (${(e as Error).message})`);
  }
  if (features && features.length && (features[0]! & FEATURE_SEIPDV2) !== 0) {
    throw backupErrors.escrow(
      'the key advertises AEAD (SEIPDv2) encryption, so OpenPGP tools would send it messages GnuPG 2.2 cannot read',
    );
  }
  let enc: openpgp.Key | openpgp.Subkey;
  try {
    enc = await key.getEncryptionKey(undefined, now, undefined, FULL_CONFIG);
  } catch (e) {
    throw backupErrors.escrow(`the key has no usable encryption subkey (${(e as Error).message}): expired or revoked?`);
  }
  const info = enc.getAlgorithmInfo();
  if (enc.keyPacket.version !== 4) throw backupErrors.escrow('the encryption subkey is not a v4 key');
  let algorithm: string;
  if (info.algorithm === 'rsaEncryptSign' || info.algorithm === 'rsaEncrypt') {
    if ((info.bits ?? 0) < 3072)
      throw backupErrors.escrow(
        `RSA ${info.bits} bits is too short for keys that guard every backup: use 3072 bits or more`,
      );
    algorithm = `rsa ${info.bits}`;
  } else if (info.algorithm === 'ecdh' && info.curve && ALLOWED_CURVES.has(info.curve)) {
    algorithm = `ecdh ${info.curve}`;
  } else {
    throw backupErrors.escrow(
      `encryption algorithm ${info.algorithm}${info.curve ? ` (${info.curve})` : ''} is not one GnuPG 2.2 reads (x25519/x448 keys are RFC 9580)`,
    );
  }
  const exp = await key.getExpirationTime(undefined, FULL_CONFIG);
  return {
    fingerprint: key.getFingerprint().toUpperCase(),
    userIds: key.getUserIDs(),
    algorithm,
    createdAt: key.getCreationTime().getTime(),
    expiresAt: exp instanceof Date ? exp.getTime() : null,
    armored: key.armor(),
  };
}

/**
 * The PKESK v3 packets that give `sessionKey` (AES-256) to each escrow key; prepended to every
 * part. Empty without escrow keys.
 */
export async function escrowPackets(sessionKey: Uint8Array, armoredKeys: readonly string[]): Promise<Uint8Array> {
  if (!armoredKeys.length) return new Uint8Array(0);
  const keys = await Promise.all(armoredKeys.map((k) => openpgp.readKey({ armoredKey: k })));
  const bin = await openpgp.encryptSessionKey({
    data: sessionKey,
    algorithm: 'aes256',
    encryptionKeys: keys,
    format: 'binary',
    config: CONFIG,
  });
  // belt and braces: every packet is a v3 PKESK (what GnuPG 2.2 reads)
  const msg = await openpgp.readMessage({ binaryMessage: bin });
  for (const p of msg.packets) {
    if (
      !(p instanceof openpgp.PublicKeyEncryptedSessionKeyPacket) ||
      (p as unknown as { version: number }).version !== 3
    ) {
      throw backupErrors.escrow('OpenPGP.js produced a session-key packet GnuPG 2.2 cannot read');
    }
  }
  return bin;
}
