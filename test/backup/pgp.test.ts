import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cfbDecrypt,
  decryptPart,
  encryptPart,
  packetHeader,
  PartFormatError,
  partSize,
} from '../../src/backup/pgp/seipd.js';
import { PartPool } from '../../src/backup/pgp/pool.js';
import { checkEscrowKey, escrowPackets } from '../../src/backup/pgp/openpgp.js';
import { createGpg, gpgVersion, type Gpg } from '../support/gpg.js';

const date = Math.floor(Date.UTC(2026, 10, 2) / 1000);
/** OpenPGP.js, an implementation independent of ours, as the oracle */
async function openpgpDecrypt(message: Uint8Array, key: Uint8Array): Promise<Buffer> {
  const msg = await openpgp.readMessage({ binaryMessage: message });
  const r = await openpgp.decrypt({ message: msg, sessionKeys: { data: key, algorithm: 'aes256' }, format: 'binary' });
  return Buffer.from(r.data as Uint8Array);
}
const throwsFormat = (f: () => unknown) => expect(f).toThrow(PartFormatError);

describe('part encryption (SEIPDv1), checked against OpenPGP.js', () => {
  it('round-trips every length encoding boundary, read by OpenPGP.js and by our reader', async () => {
    const key = crypto.randomBytes(32);
    for (const n of [0, 1, 100, 183, 184, 185, 8300, 8376, 8377, 8378, 70_000, 1_048_579, 2_500_000]) {
      const pt = crypto.randomBytes(n);
      const { message, sha256 } = encryptPart(key, pt, new Uint8Array(0), date);
      expect(message.length).toBe(partSize(n, 0));
      expect(sha256).toBe(crypto.createHash('sha256').update(message).digest('hex'));
      expect((await openpgpDecrypt(message, key)).equals(pt)).toBe(true);
      expect(Buffer.from(decryptPart(key, message)).equals(pt)).toBe(true);
    }
  });

  it('our reader reads what OpenPGP.js writes for a session key, escrow packets included', async () => {
    const key = crypto.randomBytes(32);
    const pt = crypto.randomBytes(50_000);
    const { publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'e@example.fr' }],
      format: 'object',
    });
    const msg = await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: pt }),
      sessionKey: { data: key, algorithm: 'aes256' },
      encryptionKeys: publicKey,
      format: 'binary',
      config: { aeadProtect: false },
    });
    expect(Buffer.from(decryptPart(key, msg as Uint8Array)).equals(pt)).toBe(true);
  });

  it('decrypts CFB (zero IV) as AES-ECB of the shifted ciphertext, like OpenSSL aes-256-cfb, at any length and alignment', () => {
    const key = crypto.randomBytes(32);
    const lengths = [
      0,
      1,
      15,
      16,
      17,
      31,
      32,
      33,
      100,
      4099,
      (1 << 20) - 1,
      1 << 20,
      (1 << 20) + 15,
      (1 << 20) + 17,
      2_500_001,
    ];
    for (const n of lengths) {
      const pt = crypto.randomBytes(n);
      const c = crypto.createCipheriv('aes-256-cfb', key, Buffer.alloc(16));
      const ct = Buffer.concat([c.update(pt), c.final()]);
      for (const [inAt, outAt] of [
        [0, 0],
        [1, 3],
        [5, 2],
      ] as const) {
        const inBuf = new Uint8Array(n + 8);
        inBuf.set(ct, inAt);
        const outBuf = new Uint8Array(n + 8);
        const out = outBuf.subarray(outAt, outAt + n);
        cfbDecrypt(key, inBuf.subarray(inAt, inAt + n), out);
        expect(Buffer.from(out).equals(pt)).toBe(true);
      }
    }
    expect(() => cfbDecrypt(key, new Uint8Array(32), new Uint8Array(31))).toThrow(RangeError);
  });

  it('uses the shortest packet lengths', () => {
    expect([...packetHeader(18, 191)]).toEqual([0xd2, 191]);
    expect([...packetHeader(18, 192)]).toEqual([0xd2, 192, 0]);
    expect([...packetHeader(18, 8383)]).toEqual([0xd2, 223, 255]);
    expect([...packetHeader(18, 8384)]).toEqual([0xd2, 0xff, 0, 0, 0x20, 0xc0]);
  });

  it('detects any changed byte, truncation, trailing bytes, and a wrong key (a part of another backup)', async () => {
    const key = crypto.randomBytes(32);
    const pt = crypto.randomBytes(100_000);
    const { message } = encryptPart(key, pt, new Uint8Array(0), date);
    for (const at of [0, 1, 3, 6, 7, 20, 40, 50_000, message.length - 21, message.length - 1]) {
      const bad = Buffer.from(message);
      bad[at]! ^= 0x01;
      throwsFormat(() => decryptPart(key, bad));
      await expect(openpgpDecrypt(bad, key)).rejects.toThrow();
    }
    throwsFormat(() => decryptPart(key, message.subarray(0, message.length - 10)));
    throwsFormat(() => decryptPart(key, Buffer.concat([message, Buffer.from([0])])));
    throwsFormat(() => decryptPart(crypto.randomBytes(32), message));
  });

  it('a fresh random prefix per part: the same plaintext never gives the same ciphertext', () => {
    const key = crypto.randomBytes(32);
    const pt = Buffer.alloc(4096);
    expect(
      encryptPart(key, pt, new Uint8Array(0), date).message.equals(
        encryptPart(key, pt, new Uint8Array(0), date).message,
      ),
    ).toBe(false);
  });

  it('encrypts in worker threads, results matched to their requests', async () => {
    const key = crypto.randomBytes(32);
    const pool = new PartPool(key, new Uint8Array(0), date, 2);
    const pts = Array.from({ length: 6 }, (_, i) => crypto.randomBytes(300_000 + i * 1000));
    const out = await Promise.all(
      pts.map((p) => {
        const ab = new ArrayBuffer(400_000);
        new Uint8Array(ab).set(p);
        return pool.encrypt(ab, p.length, new ArrayBuffer(partSize(400_000, 0)));
      }),
    );
    await pool.close();
    for (let i = 0; i < pts.length; i++) {
      const r = out[i]!;
      expect(new Uint8Array(r.input, 0, pts[i]!.length)).toEqual(new Uint8Array(pts[i]!)); // handed back intact
      const msg = new Uint8Array(r.out, 0, r.length);
      expect(r.sha256).toBe(crypto.createHash('sha256').update(msg).digest('hex'));
      expect((await openpgpDecrypt(msg, key)).equals(pts[i]!)).toBe(true);
    }
    // and back through the workers' reader: a wrong hash or a flipped byte is told apart
    const pool2 = new PartPool(key, new Uint8Array(0), date, 2);
    const msg0 = Buffer.from(new Uint8Array(out[0]!.out, 0, out[0]!.length));
    const copy = () => {
      const ab = new ArrayBuffer(msg0.length);
      new Uint8Array(ab).set(msg0);
      return ab;
    };
    const back = await pool2.decrypt(copy(), msg0.length, new ArrayBuffer(msg0.length), out[0]!.sha256);
    expect(Buffer.from(new Uint8Array(back.out, back.offset, back.length)).equals(pts[0]!)).toBe(true);
    await expect(
      pool2.decrypt(copy(), msg0.length, new ArrayBuffer(msg0.length), '0'.repeat(64)),
    ).rejects.toMatchObject({ kind: 'hash' });
    const bad = copy();
    new Uint8Array(bad)[100]! ^= 1;
    const badSha = crypto.createHash('sha256').update(new Uint8Array(bad)).digest('hex');
    await expect(pool2.decrypt(bad, msg0.length, new ArrayBuffer(msg0.length), badSha)).rejects.toMatchObject({
      kind: 'format',
    });
    await pool2.close();
  });
});

describe('escrow keys and stock GnuPG', () => {
  let gpg: Gpg;
  let rsa: Gpg;
  beforeAll(() => {
    gpg = createGpg('cv25519');
    rsa = createGpg('rsa3072');
  });
  afterAll(() => {
    gpg?.close();
    rsa?.close();
  });

  it(`${gpgVersion()} decrypts parts given to its escrow key; concatenated they are the plaintext`, async () => {
    for (const g of [gpg, rsa]) {
      const info = await checkEscrowKey(g.publicKey);
      expect(info.fingerprint).toBe(g.fingerprint);
      const key = crypto.randomBytes(32);
      const prefix = await escrowPackets(key, [info.armored]);
      const pts = [crypto.randomBytes(200_000), crypto.randomBytes(12_345)];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parts-'));
      pts.forEach((p, i) =>
        fs.writeFileSync(path.join(dir, `part-${i}.pgp`), encryptPart(key, p, prefix, date).message),
      );
      const out = Buffer.concat(pts.map((_, i) => g.run(['--decrypt', path.join(dir, `part-${i}.pgp`)])));
      expect(out.equals(Buffer.concat(pts))).toBe(true);
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('gpg also opens a part with the bare session key (the HSM-unwrapped key), without any escrow packet', () => {
    const key = crypto.randomBytes(32);
    const pt = crypto.randomBytes(5000);
    const out = gpg.run(
      ['--override-session-key', `9:${key.toString('hex').toUpperCase()}`, '--decrypt'],
      encryptPart(key, pt, new Uint8Array(0), date).message,
    );
    expect(out.equals(pt)).toBe(true);
  });

  it('gpg refuses a tampered part', () => {
    const key = crypto.randomBytes(32);
    const msg = encryptPart(key, crypto.randomBytes(5000), new Uint8Array(0), date).message;
    msg[2000]! ^= 4;
    expect(() => gpg.run(['--override-session-key', `9:${key.toString('hex')}`, '--decrypt'], msg)).toThrow(
      /gpg .* failed/,
    );
  });

  it('refuses keys whose messages GnuPG 2.2 could not read, and anything that is not a public key', async () => {
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ email: 'v6@example.fr' }],
      config: { v6Keys: true },
      format: 'armored',
    });
    const aead = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'aead@example.fr' }],
      config: { aeadProtect: true },
      format: 'armored',
    });
    const plain = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'ok@example.fr' }],
      format: 'armored',
    });
    const short = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 2048,
      userIDs: [{ email: 'rsa@example.fr' }],
      format: 'armored',
    });
    const expired = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'old@example.fr' }],
      keyExpirationTime: 1,
      date: new Date(Date.now() - 86_400_000),
      format: 'armored',
    });
    const reason = async (k: string) =>
      checkEscrowKey(k).then(
        () => 'accepted',
        (e: Error & { code: string }) => `${e.code}: ${e.message}`,
      );
    expect(await reason(v6.publicKey)).toMatch(/ESCROW_KEY_REFUSED: a v6 key/);
    expect(await reason(aead.publicKey)).toMatch(/ESCROW_KEY_REFUSED: .*SEIPDv2/);
    expect(await reason(short.publicKey)).toMatch(/ESCROW_KEY_REFUSED: RSA 2048/);
    expect(await reason(expired.publicKey)).toMatch(/ESCROW_KEY_REFUSED: .*expired or revoked/);
    expect(await reason(plain.privateKey)).toMatch(/ESCROW_KEY_REFUSED: this is a PRIVATE key/);
    expect(await reason('hello')).toMatch(/ESCROW_KEY_REFUSED: not an OpenPGP public key/);
    expect(await reason(plain.publicKey)).toBe('accepted');
  });
});
