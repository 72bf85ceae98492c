import fs from 'node:fs';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11KeyProvider } from '../../src/keys/pkcs11/provider.js';
import { acquireLibrary, pk, releaseLibrary } from '../../src/keys/pkcs11/library.js';
import { ckrOf } from '../../src/keys/pkcs11/ckr.js';
import type { AppError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestToken, type TestToken } from '../support/softhsm.js';

const opts = (t: TestToken, over: Partial<Parameters<typeof Pkcs11KeyProvider.open>[0]> = {}) => ({
  module: t.module,
  tokenLabel: t.label,
  pinFile: t.pinFile,
  kekLabel: t.kekLabel,
  softhsmConfFile: t.conf,
  sessionPoolSize: 4,
  createKek: true,
  backoff: { initialMs: 20, maxMs: 100 },
  ...over,
});

async function rejects(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected a rejection');
}

describe('Pkcs11KeyProvider on a real SoftHSM2 token', () => {
  let token: TestToken;
  let hsm: Pkcs11KeyProvider;
  beforeAll(async () => {
    token = createTestToken();
    hsm = await Pkcs11KeyProvider.open(opts(token));
    await hsm.ready();
  });
  afterAll(async () => {
    await hsm.close();
  });

  it('wraps and unwraps a data key with CKM_AES_KEY_WRAP_PAD under the versioned KEK', async () => {
    const dek = crypto.randomBytes(32);
    const w = await hsm.wrap(dek);
    expect(w).toMatchObject({ kekLabel: 'coffre-kek-1', kekVersion: 1, mechanism: 'CKM_AES_KEY_WRAP_PAD' });
    expect(w.wrapped.length).toBe(40);
    expect(w.wrapped.includes(dek)).toBe(false);
    expect((await hsm.unwrap(w)).equals(dek)).toBe(true);
    // two wraps of two keys differ; the same key wraps deterministically under KWP (no IV)
    expect((await hsm.wrap(crypto.randomBytes(32))).wrapped.equals(w.wrapped)).toBe(false);
  });

  it('reads the KEK attributes back from the HSM: non-extractable, sensitive, wrap/unwrap only', async () => {
    const a = await hsm.kekAttributes(1);
    expect(a).toMatchObject({
      label: 'coffre-kek-1',
      keyType: 'AES',
      valueLen: 32,
      token: true,
      private: true,
      extractable: false,
      sensitive: true,
      neverExtractable: true,
      alwaysSensitive: true,
      local: true,
      modifiable: false,
      wrap: true,
      unwrap: true,
      encrypt: false,
      decrypt: false,
      sign: false,
      verify: false,
      derive: false,
    });
    // and its value cannot be read out
    const lib = acquireLibrary(token.module, token.conf);
    try {
      const slot = lib.p.C_GetSlotList(true).find((s) => lib.p.C_GetTokenInfo(s).label.trim().startsWith(token.label))!;
      const s = lib.p.C_OpenSession(slot, pk.CKF_SERIAL_SESSION);
      try {
        lib.p.C_FindObjectsInit(s, [{ type: pk.CKA_LABEL, value: 'coffre-kek-1' }]);
        const [h] = lib.p.C_FindObjects(s, 2);
        lib.p.C_FindObjectsFinal(s);
        let code: string | undefined;
        try {
          lib.p.C_GetAttributeValue(s, h!, [{ type: pk.CKA_VALUE }]);
        } catch (e) {
          code = ckrOf(e);
        }
        expect(code).toBe('CKR_ATTRIBUTE_SENSITIVE');
      } finally {
        lib.p.C_CloseSession(s);
      }
    } finally {
      releaseLibrary(lib);
    }
  });

  it('detects an altered wrapped key (KEYS_INTEGRITY, no retry) and keeps working afterwards', async () => {
    const w = await hsm.wrap(crypto.randomBytes(32));
    const before = hsm.health().reconnects;
    for (const i of [0, 7, 39]) {
      const bad = { ...w, wrapped: Buffer.from(w.wrapped) };
      bad.wrapped[i]! ^= 0x01;
      const e = await rejects(hsm.unwrap(bad));
      expect(e.code).toBe('KEYS_INTEGRITY');
      expect(e.message).toMatch(/CKR_/);
    }
    expect((await rejects(hsm.unwrap({ ...w, wrapped: w.wrapped.subarray(0, 32) }))).code).toBe('KEYS_INTEGRITY');
    expect((await rejects(hsm.unwrap({ ...w, kekLabel: 'other-kek-1' }))).code).toBe('KEYS_INTEGRITY');
    expect((await rejects(hsm.unwrap({ ...w, kekVersion: 9, kekLabel: 'coffre-kek-9' }))).code).toBe(
      'KEYS_UNAVAILABLE',
    );
    // an integrity failure is not a connection problem
    expect(hsm.health()).toMatchObject({ up: true, reconnects: before });
    const dek = crypto.randomBytes(32);
    expect((await hsm.unwrap(await hsm.wrap(dek))).equals(dek)).toBe(true);
  });

  it('computes HMAC-SHA256 under a non-extractable HSM key created on first use, and verifies it', async () => {
    const data = Buffer.from('checkpoint 42');
    const m1 = await hsm.mac('audit', data);
    expect(m1.length).toBe(32);
    expect((await hsm.mac('audit', data)).equals(m1)).toBe(true);
    expect((await hsm.mac('other', data)).equals(m1)).toBe(false);
    expect(await hsm.verifyMac('audit', data, m1)).toBe(true);
    expect(await hsm.verifyMac('audit', Buffer.from('checkpoint 43'), m1)).toBe(false);
    const bad = Buffer.from(m1);
    bad[0]! ^= 1;
    expect(await hsm.verifyMac('audit', data, bad)).toBe(false);
    expect(await hsm.verifyMac('audit', data, m1.subarray(0, 16))).toBe(false);
    // a second provider (new lookup by label) agrees
    const again = await Pkcs11KeyProvider.open(opts(token));
    try {
      expect(await again.verifyMac('audit', data, m1)).toBe(true);
    } finally {
      await again.close();
    }
    await expect(hsm.mac('Bad Name', data)).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('runs 64 concurrent operations on a pool of 4 sessions', async () => {
    const keys = Array.from({ length: 64 }, () => crypto.randomBytes(32));
    const wrapped = await Promise.all(keys.map((k) => hsm.wrap(k)));
    const back = await Promise.all(wrapped.map((w) => hsm.unwrap(w)));
    back.forEach((k, i) => expect(k.equals(keys[i]!)).toBe(true));
    expect((await hsm.stats()).sessionsOpen).toBeLessThanOrEqual(4);
  });

  it('logs the token label on connect (a label is not a secret: not caught by the redaction of `token`), and never the PIN', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const other = await Pkcs11KeyProvider.open(opts(token, { createKek: false, log }));
    try {
      await other.ready();
      const connected = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l['event'] === 'keys.connected');
      expect(connected).toMatchObject({ tokenLabel: token.label });
      const pin = fs.readFileSync(token.pinFile, 'utf8').trim();
      expect(lines.join('')).not.toContain(pin);
    } finally {
      await other.close();
    }
  });

  it('logs in again after the token logged it out, and reconnects after a Finalize by another user', async () => {
    const lib = acquireLibrary(token.module, token.conf);
    try {
      const slot = lib.p.C_GetSlotList(true).find((s) => lib.p.C_GetTokenInfo(s).label.trim().startsWith(token.label))!;
      const s = lib.p.C_OpenSession(slot, pk.CKF_SERIAL_SESSION);
      lib.p.C_Logout(s); // logs out every session of the token
      lib.p.C_CloseSession(s);
      const dek = crypto.randomBytes(32);
      expect((await hsm.unwrap(await hsm.wrap(dek))).equals(dek)).toBe(true);
      const before = hsm.health().reconnects;
      // the whole module goes away and comes back (what a reconnect by another user does)
      lib.finalize();
      lib.initialize();
      expect((await hsm.unwrap(await hsm.wrap(dek))).equals(dek)).toBe(true);
      expect(hsm.health().up).toBe(true);
      expect(hsm.health().reconnects).toBe(before + 1);
    } finally {
      releaseLibrary(lib);
    }
  });

  it('health reports state, latency and operation counts', async () => {
    const h = hsm.health();
    expect(h.up).toBe(true);
    expect(h.operations).toBeGreaterThan(10);
    expect(h.lastLatencyMs).toBeGreaterThanOrEqual(0);
    expect(await hsm.ping()).toBeGreaterThanOrEqual(0);
    expect(await hsm.token()).toMatchObject({ label: token.label, serial: token.serial, module: token.module });
  });
});

describe('CKM_AES_GCM wrapping (tokens without key-wrap-pad)', () => {
  it('wraps with GCM encrypt/decrypt, KEK limited to encrypt/decrypt, tamper detected', async () => {
    const t = createTestToken();
    const hsm = await Pkcs11KeyProvider.open(opts(t, { wrapMechanism: 'CKM_AES_GCM' }));
    try {
      const dek = crypto.randomBytes(32);
      const w = await hsm.wrap(dek);
      expect(w.mechanism).toBe('CKM_AES_GCM');
      expect(w.wrapped.length).toBe(12 + 32 + 16);
      expect((await hsm.unwrap(w)).equals(dek)).toBe(true);
      const bad = { ...w, wrapped: Buffer.from(w.wrapped) };
      bad.wrapped[20]! ^= 0x80;
      expect((await rejects(hsm.unwrap(bad))).code).toBe('KEYS_INTEGRITY');
      expect(await hsm.kekAttributes(1)).toMatchObject({
        extractable: false,
        sensitive: true,
        wrap: false,
        unwrap: false,
        encrypt: true,
        decrypt: true,
      });
    } finally {
      await hsm.close();
    }
  });
});

describe('fail closed', () => {
  it('a wrong PIN is reported clearly (CKR code, config key), never shown, never retried, and picked up once fixed', async () => {
    const t = createTestToken();
    const good = fs.readFileSync(t.pinFile, 'utf8');
    const wrongPin = 'wrong-' + crypto.randomBytes(6).toString('hex');
    fs.writeFileSync(t.pinFile, wrongPin + '\n');
    const hsm = await Pkcs11KeyProvider.open(opts(t));
    try {
      const e = await rejects(hsm.ready());
      expect(e.code).toBe('KEYS_UNAVAILABLE');
      expect(e.httpStatus).toBe(503);
      expect(e.exitCode).toBe(1);
      expect(e.message).toContain('CKR_PIN_INCORRECT');
      expect(e.hint).toContain('keys.pinFile');
      expect(`${e.message} ${e.hint} ${JSON.stringify(hsm.health())}`).not.toContain(wrongPin);
      expect(`${e.message} ${e.hint}`).not.toContain(good.trim());
      expect(hsm.health()).toMatchObject({ up: false, lastError: 'CKR_PIN_INCORRECT' });
      await expect(hsm.wrap(crypto.randomBytes(32))).rejects.toMatchObject({ code: 'KEYS_UNAVAILABLE' });
      // the same wrong PIN is not tried again (it would count towards locking the token)
      const logins = async () => (await hsm.stats()).loginAttempts;
      const tried = await logins();
      expect(tried).toBe(1);
      await new Promise((r) => setTimeout(r, 150));
      const again = await rejects(hsm.ready());
      expect(again.message).toBe(e.message);
      expect(await logins()).toBe(tried);
      // fixing the file is enough: the provider picks it up without a restart
      fs.writeFileSync(t.pinFile, good);
      await new Promise((r) => setTimeout(r, 150));
      await hsm.ready();
      expect(hsm.health().up).toBe(true);
    } finally {
      await hsm.close();
    }
  });

  it('a missing token, a missing module and a missing KEK each say which config key to check', async () => {
    const t = createTestToken();
    const cases: [Partial<Parameters<typeof Pkcs11KeyProvider.open>[0]>, RegExp, string][] = [
      [{ tokenLabel: 'no-such-token' }, /no token labelled "no-such-token"/, 'keys.tokenLabel'],
      [{ module: '/nonexistent/libpkcs11.so' }, /not found/, 'keys.module'],
      [
        { createKek: false, kekLabel: 'absent-kek' },
        /no key-encryption key labelled absent-kek-<n>/,
        'coffre keys init',
      ],
      [{ pinFile: '/nonexistent/pin' }, /cannot read the HSM PIN file/, 'keys.pinFile'],
      [
        { pinFile: 'credential:hsm-pin' },
        /cannot read the HSM PIN file credential:hsm-pin \(systemd credential hsm-pin requested but CREDENTIALS_DIRECTORY is not set\)/,
        'keys.pinFile',
      ],
    ];
    for (const [over, msg, hint] of cases) {
      const hsm = await Pkcs11KeyProvider.open(opts(t, over));
      try {
        const e = await rejects(hsm.ready());
        expect(e.code).toBe('KEYS_UNAVAILABLE');
        expect(e.message).toMatch(msg);
        expect(e.hint).toContain(hint);
        expect(hsm.health().up).toBe(false);
      } finally {
        await hsm.close();
      }
    }
  });

  it('refuses a second SoftHSM2 configuration in the same process while the first is in use', async () => {
    const t = createTestToken();
    const hsm = await Pkcs11KeyProvider.open(opts(t));
    try {
      await hsm.ready();
      const other = await Pkcs11KeyProvider.open(opts(t, { softhsmConfFile: '/etc/softhsm/softhsm2.conf' }));
      const e = await rejects(other.ready());
      expect(e.message).toMatch(/one configuration \(SOFTHSM2_CONF\) per process/);
      await other.close();
    } finally {
      await hsm.close();
    }
  });
});

describe('KEK versions created elsewhere', () => {
  it('a running provider wraps under a version another process created, once it re-reads the versions', async () => {
    const t = createTestToken();
    const a = await Pkcs11KeyProvider.open(opts(t, { kekRefreshMs: 0 }));
    const b = await Pkcs11KeyProvider.open(opts(t));
    try {
      expect((await a.wrap(crypto.randomBytes(32))).kekVersion).toBe(1);
      await b.createKekVersion(2);
      const w = await a.wrap(crypto.randomBytes(32));
      expect(w).toMatchObject({ kekVersion: 2, kekLabel: 'coffre-kek-2' });
      expect((await b.unwrap(w)).length).toBe(32);
      // re-wrapping moves a key between versions inside the HSM
      const dek = crypto.randomBytes(32);
      const w1 = await a.rewrap(await b.wrap(dek), 1);
      expect(w1.kekVersion).toBe(1);
      expect((await a.unwrap(await a.rewrap(w1, 2))).equals(dek)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
