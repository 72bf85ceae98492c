import crypto from 'node:crypto';
import { keysErrors } from './errors.js';
import type { DbDataKeys } from './data-keys.js';
import type { FieldCipher } from './types.js';

const VERSION = 'cf1';
const NONCE = 12;
const TAG = 16;
const SCOPE = /^[a-z][a-z0-9_.-]{0,63}$/;
const FORMAT = /^cf1\.(dk_[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]+)$/;

/**
 * Confidential columns. A ciphertext is a self-describing string (docs/formats.md "Field"):
 *
 *     cf1.<data key id>.<base64url(nonce[12] ‖ AES-256-GCM ciphertext ‖ tag[16])>
 *
 * under the scope's long-lived data key (`field:<scope>`, wrapped by the KEK; rotation re-wraps it,
 * never re-encrypts). AAD = "coffre-field\0cf1\0<key id>\0<context>", so a value copied to another
 * row or column (another context) fails to decrypt. Blind indexes are HMAC-SHA256 under a
 * per-purpose data key (`blind:<purpose>`), itself wrapped by the HSM: no one without the HSM can
 * compute or test them.
 */
export class DataKeyFieldCipher implements FieldCipher {
  constructor(private readonly keys: Pick<DbDataKeys, 'get' | 'named'>) {}

  async encrypt(scope: string, plaintext: string, context: string): Promise<string> {
    if (!SCOPE.test(scope)) throw keysErrors.usage(`invalid field scope "${scope}"`);
    const keyId = await this.keys.named(`field:${scope}`);
    const key = await this.keys.get(keyId);
    try {
      const nonce = crypto.randomBytes(NONCE);
      const c = crypto.createCipheriv('aes-256-gcm', secret(key), nonce);
      c.setAAD(aad(keyId, context));
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return `${VERSION}.${keyId}.${Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64url')}`;
    } finally {
      key.fill(0);
    }
  }

  async decrypt(ciphertext: string, context: string): Promise<string> {
    const m = FORMAT.exec(ciphertext);
    if (!m) throw keysErrors.integrity('not a field ciphertext (expected cf1.<key>.<data>)');
    const keyId = m[1]!;
    const raw = Buffer.from(m[2]!, 'base64url');
    if (raw.length < NONCE + TAG) throw keysErrors.integrity('field ciphertext is truncated');
    const key = await this.keys.get(keyId);
    try {
      const d = crypto.createDecipheriv('aes-256-gcm', secret(key), raw.subarray(0, NONCE));
      d.setAAD(aad(keyId, context));
      d.setAuthTag(raw.subarray(raw.length - TAG));
      const out = Buffer.concat([d.update(raw.subarray(NONCE, raw.length - TAG)), d.final()]);
      return out.toString('utf8');
    } catch {
      throw keysErrors.integrity(
        'field ciphertext failed authentication: altered, or moved from another row or column',
      );
    } finally {
      key.fill(0);
    }
  }

  async blindIndex(purpose: string, value: string): Promise<string> {
    if (!SCOPE.test(purpose)) throw keysErrors.usage(`invalid blind index purpose "${purpose}"`);
    const keyId = await this.keys.named(`blind:${purpose}`);
    const key = await this.keys.get(keyId);
    try {
      const mac = crypto
        .createHmac('sha256', secret(key))
        .update(`coffre-blind\0${purpose}\0`)
        .update(value, 'utf8')
        .digest();
      return `bi1.${mac.toString('base64url')}`;
    } finally {
      key.fill(0);
    }
  }

  async blindTokens(purpose: string, values: readonly string[]): Promise<string[]> {
    if (!SCOPE.test(purpose)) throw keysErrors.usage(`invalid blind index purpose "${purpose}"`);
    if (values.length === 0) return [];
    const keyId = await this.keys.named(`blind:${purpose}`);
    const key = await this.keys.get(keyId);
    try {
      const k = secret(key);
      const prefix = `coffre-blind\0${purpose}\0`;
      return values.map((v) =>
        crypto.createHmac('sha256', k).update(prefix).update(v, 'utf8').digest().subarray(0, 16).toString('base64url'),
      );
    } finally {
      key.fill(0);
    }
  }
}

/**
 * The key as a KeyObject: Node 24 checks a Buffer key for being a KeyObject by catching an
 * exception, which makes a cipher made from a Buffer ~4x dearer than one made from a KeyObject
 * (bench/RESULTS.md, design measurements). Node wipes the KeyObject's copy when it is collected,
 * as it does a cipher's; the Buffer is wiped by the caller at once.
 */
const secret = (key: Buffer) => crypto.createSecretKey(key);

const aad = (keyId: string, context: string) => Buffer.from(`coffre-field\0${VERSION}\0${keyId}\0${context}`, 'utf8');
