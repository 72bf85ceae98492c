import { isAppError } from '../../shared/errors.js';
import { keysErrors } from '../errors.js';
import type { KekAttributes, KeyHealth, SigningKeyAttributes, TokenInfo, WrappedKey } from '../types.js';
import { Connection, type ConnectionEvents, type ConnectionOptions } from './connection.js';
import { DEK_BYTES, hmac, rewrapInside, unwrapDek, verifyHmac, wrapDek } from './crypto.js';
import { KekStore, type WrapMechanism } from './kek.js';
import { SigningKeyStore } from './signing.js';

export type { WrapMechanism } from './kek.js';

/** What a provider is opened with: plain data, it crosses to the PKCS#11 worker thread. */
export interface EngineOptions extends ConnectionOptions {
  /** label prefix; versions are `<kekLabel>-<n>` */
  kekLabel: string;
  /** 'auto': CKM_AES_KEY_WRAP_PAD when the token wraps with it, else CKM_AES_GCM (encrypt) */
  wrapMechanism?: 'auto' | WrapMechanism | undefined;
  /** create KEK version 1 when the token holds none (`coffre init`, `coffre keys init`) */
  createKek?: boolean | undefined;
  /** how often `wrap` re-reads the KEK versions (another node may have rotated); default 60 s */
  kekRefreshMs?: number | undefined;
}

export interface EngineEvents extends ConnectionEvents {
  /** a KEK version the keys need is gone from the HSM (pulled by the customer) */
  kekMissing(label: string): void;
}

/**
 * One provider as the PKCS#11 worker thread holds it: the connection (module, login, sessions,
 * reconnection), the KEK store (labels, versions, handles) and the operations of `KeyProvider`
 * and `KekAdmin`, each one synchronous call sequence on a pooled session.
 */
export class Pkcs11Engine {
  private readonly conn: Connection;
  private readonly kek: KekStore;
  private readonly signing: SigningKeyStore;
  private readonly o: EngineOptions;

  constructor(o: EngineOptions, events: EngineEvents) {
    this.o = o;
    this.kek = new KekStore(o.kekLabel);
    this.signing = new SigningKeyStore(o.kekLabel);
    this.conn = new Connection(o, events, {
      afterLogin: (p, s) => {
        this.kek.readVersions(p, s);
        if (this.kek.versions.length === 0) {
          if (!o.createKek) this.kek.current(); // throws: no KEK
          const mech = this.kek.chooseMechanism(p, this.conn.slot!, o.wrapMechanism ?? 'auto');
          this.kek.generate(p, s, this.kek.label(1), mech);
          events.log(
            'info',
            { event: 'keys.kek_created', label: this.kek.label(1), mechanism: mech },
            'key-encryption key created in the HSM',
          );
          this.kek.readVersions(p, s);
        }
        const mech = this.kek.mechanismOf(this.kek.current())!;
        const want = o.wrapMechanism ?? 'auto';
        if (want !== 'auto' && want !== mech)
          throw keysErrors.unavailable(
            `KEK ${this.kek.label(this.kek.current())} is set up for ${mech}, not ${want}`,
            'check keys.wrapMechanism',
          );
      },
      describe: () => ({ kekVersion: this.kek.versions.at(-1) }),
      forget: () => {
        this.kek.forget();
        this.signing.forget();
      },
    });
    this.kek.onMissing = (label) => {
      events.log('error', { event: 'keys.kek_missing', label }, 'a key-encryption key is missing from the HSM');
      events.kekMissing(label);
    };
  }

  health(): KeyHealth {
    return this.conn.health();
  }

  /** Tries to connect once (never throws: a provider that cannot reach the HSM is "down"). */
  open(): void {
    try {
      this.conn.reconnect();
    } catch {
      /* down: see ready() */
    }
  }

  close(): void {
    this.conn.close();
  }

  // ---------------------------------------------------------------- KeyProvider

  wrap(dek: Buffer): WrappedKey {
    if (dek.length !== DEK_BYTES) throw keysErrors.usage(`a data key is ${DEK_BYTES} bytes (got ${dek.length})`);
    this.conn.ensureUp();
    if (performance.now() - this.kek.readAt > (this.o.kekRefreshMs ?? 60_000)) {
      // another process may have rotated: one lookup of the next label, a full listing only if it exists
      this.conn.run(
        'read KEK versions',
        (p, s) => {
          if (this.kek.find(p, s, this.kek.label(this.kek.current() + 1)).length) this.kek.readVersions(p, s);
          else this.kek.readAt = performance.now();
        },
        false,
      );
    }
    return this.wrapWith(dek, this.kek.current());
  }

  private wrapWith(dek: Buffer, version: number): WrappedKey {
    const label = this.kek.label(version);
    const mech = this.kek.mechanismOf(version)!;
    const wrapped = this.conn.run(
      'wrap',
      (p, s) => wrapDek(p, s, this.kek.kekHandle(p, s, version), mech, label, dek),
      false,
    );
    return { kekLabel: label, kekVersion: version, mechanism: mech, wrapped };
  }

  private checkWrapped(w: WrappedKey): void {
    if (w.kekLabel !== this.kek.label(w.kekVersion)) {
      throw keysErrors.integrity(
        `wrapped key names KEK "${w.kekLabel}" version ${w.kekVersion}, which is not a version of ${this.o.kekLabel}`,
      );
    }
    if (w.mechanism !== 'CKM_AES_KEY_WRAP_PAD' && w.mechanism !== 'CKM_AES_GCM')
      throw keysErrors.integrity(`wrapped key uses unknown mechanism ${w.mechanism}`);
  }

  unwrap(w: WrappedKey): Buffer {
    this.checkWrapped(w);
    const value = this.conn.run(
      'unwrap',
      (p, s) => unwrapDek(p, s, this.kek.kekHandle(p, s, w.kekVersion), w.mechanism, w.kekLabel, w.wrapped),
      true,
    );
    if (value.length !== DEK_BYTES) {
      value.fill(0);
      throw keysErrors.integrity('unwrapped data key has the wrong length');
    }
    return value;
  }

  rewrap(w: WrappedKey, toVersion: number): WrappedKey {
    this.checkWrapped(w);
    this.conn.ensureUp();
    if (!this.kek.mechanismOf(toVersion))
      this.conn.run('read KEK versions', (p, s) => this.kek.readVersions(p, s), false);
    const toMech = this.kek.mechanismOf(toVersion);
    if (!toMech)
      throw keysErrors.unavailable(`KEK ${this.kek.label(toVersion)} is not in the HSM`, 'check keys.kekLabel');
    if (w.mechanism !== 'CKM_AES_KEY_WRAP_PAD' || toMech !== 'CKM_AES_KEY_WRAP_PAD') {
      const dek = this.unwrap(w);
      try {
        return this.wrapWith(dek, toVersion);
      } finally {
        dek.fill(0);
      }
    }
    const wrapped = this.conn.run(
      'rewrap',
      (p, s) =>
        rewrapInside(p, s, this.kek.kekHandle(p, s, w.kekVersion), this.kek.kekHandle(p, s, toVersion), w.wrapped),
      true,
    );
    return { kekLabel: this.kek.label(toVersion), kekVersion: toVersion, mechanism: toMech, wrapped };
  }

  mac(keyName: string, data: Buffer, create = true): Buffer {
    const label = this.kek.macLabel(keyName);
    return this.conn.run('mac', (p, s) => hmac(p, s, this.kek.macHandle(p, s, label, create, keyName), data), false);
  }

  createMacKey(keyName: string): void {
    const label = this.kek.macLabel(keyName);
    this.conn.run('create key', (p, s) => void this.kek.macHandle(p, s, label, true), false);
  }

  destroyMacKey(keyName: string): boolean {
    const label = this.kek.macLabel(keyName);
    return this.conn.run('destroy key', (p, s) => this.kek.destroyMac(p, s, label), false);
  }

  verifyMac(keyName: string, data: Buffer, mac: Buffer): boolean {
    const label = this.kek.macLabel(keyName);
    if (mac.length !== 32) return false;
    try {
      return this.conn.run('verify', (p, s) => verifyHmac(p, s, this.kek.macHandle(p, s, label), data, mac), true);
    } catch (e) {
      if (isAppError(e) && e.code === 'KEYS_INTEGRITY') return false;
      throw e;
    }
  }

  // ---------------------------------------------------------------- SigningKeys

  signingPublicKey(name: string, create: boolean): Buffer {
    return this.conn.run(
      create ? 'create signing key' : 'read signing key',
      (p, s) => this.signing.pair(p, s, name, create).spki,
      false,
    );
  }

  signDigest(name: string, digest: Buffer): Buffer {
    return this.conn.run('sign', (p, s) => this.signing.signDigest(p, s, name, digest), false);
  }

  signingKeyAttributes(name: string): SigningKeyAttributes {
    return this.conn.run('read signing key attributes', (p, s) => this.signing.attributes(p, s, name), false);
  }

  // ---------------------------------------------------------------- KekAdmin

  ready(): void {
    this.conn.ensureUp();
  }

  token(): TokenInfo {
    this.conn.ensureUp();
    return { ...this.conn.tokenInfo! };
  }

  kekVersions(): number[] {
    this.conn.run('read KEK versions', (p, s) => this.kek.readVersions(p, s), false);
    return [...this.kek.versions];
  }

  currentKekVersion(): number {
    this.conn.ensureUp();
    return this.kek.current();
  }

  kekAttributes(version: number): KekAttributes {
    return this.conn.run('read KEK attributes', (p, s) => this.kek.attributes(p, s, version), false);
  }

  createKekVersion(version: number): KekAttributes {
    if (!Number.isInteger(version) || version < 1)
      throw keysErrors.usage(`KEK version must be a positive integer (got ${version})`);
    return this.conn.run(
      'create KEK',
      (p, s) => {
        const label = this.kek.label(version);
        if (this.kek.find(p, s, label).length)
          throw keysErrors.unavailable(`the HSM already holds a key labelled ${label}`, 'check keys.kekLabel');
        this.kek.generate(p, s, label, this.kek.chooseMechanism(p, this.conn.slot!, this.o.wrapMechanism ?? 'auto'));
        this.kek.readVersions(p, s);
        return this.kek.attributes(p, s, version);
      },
      false,
    );
  }

  destroyKekVersion(version: number): void {
    this.conn.run(
      'destroy KEK',
      (p, s) => {
        this.kek.destroy(p, s, version);
        this.kek.readVersions(p, s);
      },
      false,
    );
  }

  ping(): number {
    const t0 = performance.now();
    this.conn.run('ping', (p, s) => p.C_GetSessionInfo(s), false);
    return performance.now() - t0;
  }

  /** The wrapping mechanism of the current version (for status and tests). */
  mechanism(): WrapMechanism {
    this.conn.ensureUp();
    return this.kek.mechanismOf(this.kek.current())!;
  }

  /**
   * The periodic health probe: the current KEK is looked up again by label (not from the handle
   * cache), so a key pulled from the HSM is noticed without traffic. A missing current KEK takes
   * the provider down (it comes back by itself once the key is back).
   */
  probe(): void {
    this.conn.ensureUp();
    const version = this.kek.current();
    const label = this.kek.label(version);
    this.kek.forget(label);
    try {
      this.conn.run('probe', (p, s) => this.kek.kekHandle(p, s, version), false);
    } catch (e) {
      if (isAppError(e) && e.code === 'KEYS_UNAVAILABLE' && e.message.startsWith(`KEK ${label} is not in the HSM`))
        this.conn.markDown(e);
      throw e;
    }
  }

  /** test hooks: C_Login calls made, operation sessions open */
  stats(): { loginAttempts: number; sessionsOpen: number } {
    return { loginAttempts: this.conn.pin.loginAttempts, sessionsOpen: this.conn.sessions.open };
  }
}
