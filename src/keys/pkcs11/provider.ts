import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../shared/logger.js';
import { isAppError, type AppError } from '../../shared/errors.js';
import { readSecretFile } from '../../config/index.js';
import { keysErrors } from '../errors.js';
import type { KekAdmin, KekAttributes, KeyHealth, KeyProvider, TokenInfo, WrappedKey } from '../types.js';
import { CONNECTION_CODES, INTEGRITY_CODES, PIN_CODES, RELOGIN_CODES, STALE_HANDLE_CODES, ckrOf } from './ckr.js';
import { acquireLibrary, pk, releaseLibrary, type Pkcs11Library } from './library.js';
import { findSlot } from './token.js';

export type WrapMechanism = 'CKM_AES_KEY_WRAP_PAD' | 'CKM_AES_GCM';

export interface Pkcs11ProviderOptions {
  module: string;
  slot?: number | undefined;
  tokenLabel?: string | undefined;
  pinFile: string;
  /** label prefix; versions are `<kekLabel>-<n>` */
  kekLabel: string;
  /** SoftHSM2 only: SOFTHSM2_CONF for this process */
  softhsmConfFile?: string | undefined;
  sessionPoolSize: number;
  /** 'auto': CKM_AES_KEY_WRAP_PAD when the token wraps with it, else CKM_AES_GCM (encrypt) */
  wrapMechanism?: 'auto' | WrapMechanism | undefined;
  /** create KEK version 1 when the token holds none (`coffre init`, `coffre keys init`) */
  createKek?: boolean;
  log?: Logger | undefined;
  /** reconnect back-off (default 500 ms doubling to 30 s) */
  backoff?: { initialMs: number; maxMs: number };
  /** how often `wrap` re-reads the KEK versions (another node may have rotated); default 60 s */
  kekRefreshMs?: number;
}

interface Session {
  h: Buffer;
  gen: number;
}

const GCM_IV_BYTES = 12;
const DEK_BYTES = 32;
const MAC_NAME = /^[a-z0-9][a-z0-9._-]{0,47}$/;
const PIN_HINT = 'check keys.pinFile (a refused PIN is not tried again until that file changes: retries would lock the token)';

const attr = (type: number, value?: number | boolean | string | Buffer) => (value === undefined ? { type } : { type, value });
const bool = (b: Buffer | undefined) => b !== undefined && b.length > 0 && b[0] !== 0;

/**
 * KeyProvider over a PKCS#11 module (pkcs11js). Verified behaviours it is built around (issue 3):
 *
 * - C_Initialize with CKF_OS_LOCKING_OK (library.ts).
 * - Login belongs to the token: we log in ONCE and keep a bounded pool of sessions
 *   (`sessionPoolSize`); we never log out (a logout on any session logs all of them out).
 * - A session that returned an error is closed, never reused.
 * - Object handles are looked up again by label after any re-login or reconnect.
 * - Only connection-type CKR codes trigger a reconnect (Finalize, Initialize, login, lookup), with
 *   exponential back-off; integrity failures are never retried; a refused PIN is never retried
 *   until the PIN file changes (retrying would lock the token).
 * - It never throws from `open()`: a provider that cannot reach the HSM is "down", answers every
 *   call with KEYS_UNAVAILABLE (503) and keeps reconnecting in the background.
 */
export class Pkcs11KeyProvider implements KeyProvider, KekAdmin {
  private lib: Pkcs11Library | undefined;
  private libGen = -1;
  private needReinit = false;
  private slot: Buffer | undefined;
  private tokenInfo: TokenInfo | undefined;
  private up = false;
  private closed = false;
  private connecting: Promise<void> | undefined;
  private lastErr: AppError | undefined;
  private lastError: string | undefined;
  private lastLatencyMs: number | undefined;
  private reconnects = 0;
  private connectedOnce = false;
  private operations = 0;
  private backoffMs = 0;
  private nextAttemptAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private rejectedPinHash: string | undefined;
  /** the refused PIN's CKR code, repeated while the PIN file is unchanged */
  private rejectedPinCode = 'CKR_PIN_INCORRECT';
  /** C_Login calls made (tests check that a refused PIN is not tried again) */
  private loginAttempts = 0;

  /** the session we logged in with: kept open, never used for operations, so closing an errored
   * session never closes the token's last session (which would log it out) */
  private anchor: Session | undefined;
  private readonly idle: Session[] = [];
  private open = 0;
  private busy = 0;
  private readonly waiters: ((s: Session | null) => void)[] = [];

  private readonly handles = new Map<string, Buffer>();
  private versions: number[] = [];
  private readonly versionMech = new Map<number, WrapMechanism>();
  private versionsReadAt = 0;

  private constructor(private readonly o: Pkcs11ProviderOptions) {}

  /** Opens the provider and tries to connect once. Never throws for an unreachable HSM: see `ready()`. */
  static async open(o: Pkcs11ProviderOptions): Promise<Pkcs11KeyProvider> {
    const p = new Pkcs11KeyProvider(o);
    await p.reconnect().catch(() => undefined);
    return p;
  }

  // ---------------------------------------------------------------- KeyProvider

  async wrap(dek: Buffer): Promise<WrappedKey> {
    if (dek.length !== DEK_BYTES) throw keysErrors.usage(`a data key is ${DEK_BYTES} bytes (got ${dek.length})`);
    await this.ensureUp();
    if (performance.now() - this.versionsReadAt > (this.o.kekRefreshMs ?? 60_000)) {
      // another process may have rotated: one lookup of the next label, a full listing only if it exists
      await this.run(
        'read KEK versions',
        async (s) => {
          if ((await this.find(s, this.kekLabelOf(this.current() + 1))).length) await this.readVersions(s);
          else this.versionsReadAt = performance.now();
        },
        false,
      );
    }
    return this.wrapWith(dek, this.current());
  }

  private async wrapWith(dek: Buffer, version: number): Promise<WrappedKey> {
    const label = this.kekLabelOf(version);
    const mech = this.versionMech.get(version)!;
    const wrapped = await this.run(
      'wrap',
      async (s) => {
        const kek = await this.kekHandle(s, version);
        if (mech === 'CKM_AES_GCM') {
          const iv = crypto.randomBytes(GCM_IV_BYTES);
          this.p.C_EncryptInit(s, this.gcm(iv, label), kek);
          const ct = await this.p.C_EncryptAsync(s, dek, Buffer.alloc(dek.length + 16));
          return Buffer.concat([iv, ct]);
        }
        const tmp = this.p.C_CreateObject(s, [
          attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
          attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
          attr(pk.CKA_TOKEN, false),
          attr(pk.CKA_PRIVATE, true),
          attr(pk.CKA_SENSITIVE, false),
          attr(pk.CKA_EXTRACTABLE, true),
          attr(pk.CKA_VALUE, dek),
        ]);
        try {
          return await this.p.C_WrapKeyAsync(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, kek, tmp, Buffer.alloc(dek.length + 16));
        } finally {
          this.p.C_DestroyObject(s, tmp);
        }
      },
      false,
    );
    return { kekLabel: label, kekVersion: version, mechanism: mech, wrapped: Buffer.from(wrapped) };
  }

  private checkWrapped(w: WrappedKey): void {
    if (w.kekLabel !== this.kekLabelOf(w.kekVersion)) {
      throw keysErrors.integrity(`wrapped key names KEK "${w.kekLabel}" version ${w.kekVersion}, which is not a version of ${this.o.kekLabel}`);
    }
    if (w.mechanism !== 'CKM_AES_KEY_WRAP_PAD' && w.mechanism !== 'CKM_AES_GCM') throw keysErrors.integrity(`wrapped key uses unknown mechanism ${w.mechanism}`);
  }

  async unwrap(w: WrappedKey): Promise<Buffer> {
    this.checkWrapped(w);
    const value = await this.run(
      'unwrap',
      async (s) => {
        const kek = await this.kekHandle(s, w.kekVersion);
        if (w.mechanism === 'CKM_AES_GCM') {
          if (w.wrapped.length !== GCM_IV_BYTES + DEK_BYTES + 16) throw keysErrors.integrity('wrapped key has the wrong length');
          this.p.C_DecryptInit(s, this.gcm(w.wrapped.subarray(0, GCM_IV_BYTES), w.kekLabel), kek);
          return Buffer.from(await this.p.C_DecryptAsync(s, w.wrapped.subarray(GCM_IV_BYTES), Buffer.alloc(w.wrapped.length)));
        }
        const h = await this.p.C_UnwrapKeyAsync(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, kek, w.wrapped, [
          attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
          attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
          attr(pk.CKA_TOKEN, false),
          attr(pk.CKA_PRIVATE, true),
          attr(pk.CKA_SENSITIVE, false),
          attr(pk.CKA_EXTRACTABLE, true),
        ]);
        try {
          return Buffer.from(this.p.C_GetAttributeValue(s, h, [attr(pk.CKA_VALUE)])[0]!.value);
        } finally {
          this.p.C_DestroyObject(s, h);
        }
      },
      true,
    );
    if (value.length !== DEK_BYTES) {
      value.fill(0);
      throw keysErrors.integrity('unwrapped data key has the wrong length');
    }
    return value;
  }

  async rewrap(w: WrappedKey, toVersion: number): Promise<WrappedKey> {
    this.checkWrapped(w);
    await this.ensureUp();
    if (!this.versionMech.has(toVersion)) await this.run('read KEK versions', (s) => this.readVersions(s), false);
    const toMech = this.versionMech.get(toVersion);
    if (!toMech) throw keysErrors.unavailable(`KEK ${this.kekLabelOf(toVersion)} is not in the HSM`, 'check keys.kekLabel');
    if (w.mechanism !== 'CKM_AES_KEY_WRAP_PAD' || toMech !== 'CKM_AES_KEY_WRAP_PAD') {
      const dek = await this.unwrap(w);
      try {
        return await this.wrapWith(dek, toVersion);
      } finally {
        dek.fill(0);
      }
    }
    const label = this.kekLabelOf(toVersion);
    const wrapped = await this.run(
      'rewrap',
      async (s) => {
        const from = await this.kekHandle(s, w.kekVersion);
        const to = await this.kekHandle(s, toVersion);
        const h = await this.p.C_UnwrapKeyAsync(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, from, w.wrapped, [
          attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY),
          attr(pk.CKA_KEY_TYPE, pk.CKK_AES),
          attr(pk.CKA_TOKEN, false),
          attr(pk.CKA_PRIVATE, true),
          attr(pk.CKA_SENSITIVE, true),
          attr(pk.CKA_EXTRACTABLE, true),
        ]);
        try {
          return Buffer.from(await this.p.C_WrapKeyAsync(s, { mechanism: pk.CKM_AES_KEY_WRAP_PAD }, to, h, Buffer.alloc(DEK_BYTES + 16)));
        } finally {
          this.p.C_DestroyObject(s, h);
        }
      },
      true,
    );
    return { kekLabel: label, kekVersion: toVersion, mechanism: toMech, wrapped };
  }

  async mac(keyName: string, data: Buffer): Promise<Buffer> {
    const label = this.macLabel(keyName);
    return this.run(
      'mac',
      async (s) => {
        const key = await this.macHandle(s, label);
        this.p.C_SignInit(s, { mechanism: pk.CKM_SHA256_HMAC }, key);
        return Buffer.from(await this.p.C_SignAsync(s, data, Buffer.alloc(32)));
      },
      false,
    );
  }

  async verifyMac(keyName: string, data: Buffer, mac: Buffer): Promise<boolean> {
    const label = this.macLabel(keyName);
    if (mac.length !== 32) return false;
    try {
      return await this.run(
        'verify',
        async (s) => {
          const key = await this.macHandle(s, label);
          this.p.C_VerifyInit(s, { mechanism: pk.CKM_SHA256_HMAC }, key);
          return await this.p.C_VerifyAsync(s, data, mac);
        },
        true,
      );
    } catch (e) {
      if (isAppError(e) && e.code === 'KEYS_INTEGRITY') return false;
      throw e;
    }
  }

  health(): KeyHealth {
    return {
      up: this.up,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastLatencyMs !== undefined ? { lastLatencyMs: Math.round(this.lastLatencyMs * 1000) / 1000 } : {}),
      reconnects: this.reconnects,
      operations: this.operations,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const until = Date.now() + 5_000;
    while (this.busy > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.idle.splice(0)) this.closeSession(s);
    if (this.anchor) this.closeSession(this.anchor);
    this.anchor = undefined;
    for (const w of this.waiters.splice(0)) w(null);
    this.up = false;
    if (this.lib) releaseLibrary(this.lib);
    this.lib = undefined;
  }

  // ---------------------------------------------------------------- KekAdmin

  async ready(): Promise<void> {
    await this.ensureUp();
  }

  async token(): Promise<TokenInfo> {
    await this.ensureUp();
    return { ...this.tokenInfo! };
  }

  async kekVersions(): Promise<number[]> {
    await this.run('read KEK versions', (s) => this.readVersions(s), false);
    return [...this.versions];
  }

  async currentKekVersion(): Promise<number> {
    await this.ensureUp();
    return this.current();
  }

  async kekAttributes(version: number): Promise<KekAttributes> {
    return this.run('read KEK attributes', async (s) => this.readKekAttributes(s, version, await this.kekHandle(s, version)), false);
  }

  async createKekVersion(version: number): Promise<KekAttributes> {
    if (!Number.isInteger(version) || version < 1) throw keysErrors.usage(`KEK version must be a positive integer (got ${version})`);
    return this.run(
      'create KEK',
      async (s) => {
        const label = this.kekLabelOf(version);
        if ((await this.find(s, label)).length) throw keysErrors.unavailable(`the HSM already holds a key labelled ${label}`, 'check keys.kekLabel');
        const h = await this.generateKek(s, label);
        this.handles.set(label, h);
        await this.readVersions(s);
        return this.readKekAttributes(s, version, h);
      },
      false,
    );
  }

  async destroyKekVersion(version: number): Promise<void> {
    await this.run(
      'destroy KEK',
      async (s) => {
        const label = this.kekLabelOf(version);
        for (const h of await this.find(s, label)) this.p.C_DestroyObject(s, h);
        this.handles.delete(label);
        await this.readVersions(s);
      },
      false,
    );
  }

  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.run('ping', async (s) => this.p.C_GetSessionInfo(s), false);
    return performance.now() - t0;
  }

  /** The wrapping mechanism of the current version (for status and tests). */
  async mechanism(): Promise<WrapMechanism> {
    await this.ensureUp();
    return this.versionMech.get(this.current())!;
  }

  // ---------------------------------------------------------------- connection

  private get p() {
    if (!this.lib) throw keysErrors.unavailable('the PKCS#11 module is not loaded', 'check keys.module');
    return this.lib.p;
  }

  private kekLabelOf(version: number): string {
    return `${this.o.kekLabel}-${version}`;
  }

  private macLabel(keyName: string): string {
    if (!MAC_NAME.test(keyName)) throw keysErrors.usage(`invalid MAC key name "${keyName}"`);
    return `${this.o.kekLabel}-mac-${keyName}`;
  }

  private current(): number {
    const v = this.versions[this.versions.length - 1];
    if (v === undefined) throw keysErrors.unavailable(`no key-encryption key labelled ${this.o.kekLabel}-<n> in the HSM`, 'run `coffre keys init`, or check keys.kekLabel');
    return v;
  }

  private async ensureUp(): Promise<void> {
    if (this.closed) throw keysErrors.unavailable('the key provider is closed');
    if (this.up) return;
    if (this.connecting) return this.connecting;
    if (performance.now() < this.nextAttemptAt && this.lastErr) throw this.lastErr;
    return this.reconnect();
  }

  /** Single-flight (re)connection. */
  private reconnect(): Promise<void> {
    this.connecting ??= (async () => {
      try {
        await this.connectOnce();
        if (this.connectedOnce) this.reconnects++;
        this.connectedOnce = true;
        this.up = true;
        this.backoffMs = 0;
        this.nextAttemptAt = 0;
        this.lastErr = undefined;
        this.o.log?.info({ event: 'keys.connected', tokenLabel: this.tokenInfo?.label, kekVersion: this.versions.at(-1) }, 'HSM connected');
      } catch (e) {
        const err = isAppError(e) ? e : keysErrors.unavailable(`cannot use the HSM (${ckrOf(e) ?? (e as Error).message})`, undefined, e);
        // a module whose connection broke (a network HSM's client library) only reconnects when it
        // is initialized again: the next attempt does that, unless the PIN was the problem or
        // other providers of this process are using the module (connection codes reinitialize anyway)
        if (!this.rejectedPinHash && (this.lib?.users ?? 0) <= 1) this.needReinit = true;
        this.markDown(err);
        throw err;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private markDown(err: AppError): void {
    this.up = false;
    this.lastErr = err;
    this.lastError = /\((CKR_[A-Z0-9_]+)\)/.exec(err.message)?.[1] ?? err.message;
    const b = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.backoffMs = this.backoffMs ? Math.min(b.maxMs, this.backoffMs * 2) : b.initialMs;
    this.nextAttemptAt = performance.now() + this.backoffMs;
    this.o.log?.warn({ event: 'keys.down', error: err.message, retryInMs: this.backoffMs }, 'HSM unavailable');
    if (this.timer) clearTimeout(this.timer);
    if (!this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.up && !this.closed) this.reconnect().catch(() => undefined);
      }, this.backoffMs);
      this.timer.unref();
    }
  }

  /** Connection lost during an operation: the next call reconnects at once (then backs off). */
  private connectionLost(ckr: string): void {
    this.up = false;
    this.needReinit = true;
    this.handles.clear();
    this.lastError = ckr;
    this.o.log?.warn({ event: 'keys.connection_lost', ckr }, 'HSM connection lost');
  }

  private async connectOnce(): Promise<void> {
    if (!this.lib) {
      this.lib = acquireLibrary(this.o.module, this.o.softhsmConfFile);
      this.needReinit = false;
    } else if (this.needReinit || !this.lib.initialized) {
      // every session of this module is gone after this: forget ours without closing them
      this.lib.reinitialize(this.libGen);
      this.needReinit = false;
    }
    const oldAnchor = this.anchor;
    this.anchor = undefined;
    if (this.libGen !== this.lib.generation) {
      this.open -= this.idle.length;
      this.idle.length = 0;
      this.libGen = this.lib.generation;
    } else {
      for (const s of this.idle.splice(0)) this.discard(s);
    }
    this.handles.clear();
    const { handle, token } = findSlot(this.lib, { slot: this.o.slot, tokenLabel: this.o.tokenLabel });
    this.slot = handle;
    this.tokenInfo = { module: this.o.module, ...token };

    const pin = this.readPin();
    const pinHash = crypto.createHash('sha256').update(pin).digest('hex');
    if (this.rejectedPinHash === pinHash) {
      throw keysErrors.unavailable(`the HSM refused the PIN for token "${token.label}" (${this.rejectedPinCode})`, PIN_HINT);
    }
    const s = { h: this.p.C_OpenSession(this.slot, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION), gen: this.lib.generation };
    try {
      try {
        this.loginAttempts++;
        this.p.C_Login(s.h, pk.CKU_USER, pin);
      } catch (e) {
        const ckr = ckrOf(e);
        if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') {
          if (ckr && PIN_CODES.has(ckr)) {
            this.rejectedPinHash = pinHash;
            this.rejectedPinCode = ckr;
            throw keysErrors.unavailable(`the HSM refused the PIN for token "${token.label}" (${ckr})`, PIN_HINT, e);
          }
          throw keysErrors.unavailable(`cannot log in to token "${token.label}" (${ckr ?? (e as Error).message})`, 'check the HSM and keys.pinFile', e);
        }
      }
      this.rejectedPinHash = undefined;
      await this.readVersions(s.h);
      if (this.versions.length === 0) {
        if (!this.o.createKek) this.current(); // throws: no KEK
        await this.generateKek(s.h, this.kekLabelOf(1));
        await this.readVersions(s.h);
      }
      const mech = this.versionMech.get(this.current())!;
      const want = this.o.wrapMechanism ?? 'auto';
      if (want !== 'auto' && want !== mech) {
        throw keysErrors.unavailable(`KEK ${this.kekLabelOf(this.current())} is set up for ${mech}, not ${want}`, 'check keys.wrapMechanism');
      }
      this.anchor = s;
    } catch (e) {
      this.closeSession(s);
      throw e;
    } finally {
      if (oldAnchor) this.closeSession(oldAnchor);
    }
  }

  private readPin(): string {
    try {
      const pin = readSecretFile(this.o.pinFile, 'keys.pinFile');
      if (!pin) throw keysErrors.unavailable(`the PIN file ${this.o.pinFile} is empty`, 'check keys.pinFile');
      return pin;
    } catch (e) {
      if (isAppError(e) && e.code === 'KEYS_UNAVAILABLE') throw e;
      // a systemd credential: say why (not loaded for this unit, not readable…); a file: its path says it
      const why = this.o.pinFile.startsWith('credential:') && isAppError(e) ? ` (${e.message.replace(/^keys\.pinFile: /, '')})` : '';
      throw keysErrors.unavailable(`cannot read the HSM PIN file ${this.o.pinFile}${why}`, 'check keys.pinFile (it must be readable by the service user)', e);
    }
  }

  // ---------------------------------------------------------------- sessions

  private openSession(): Session {
    const h = this.p.C_OpenSession(this.slot!, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION);
    this.open++;
    return { h, gen: this.lib!.generation };
  }

  private acquire(): Promise<Session> {
    const s = this.idle.pop();
    if (s) return Promise.resolve(s);
    if (this.open < this.o.sessionPoolSize) return Promise.resolve(this.openSession());
    return new Promise<Session | null>((resolve) => this.waiters.push(resolve)).then((got) => {
      if (this.closed) throw keysErrors.unavailable('the key provider is closed');
      return got ?? this.acquire();
    });
  }

  private release(s: Session): void {
    if (!this.lib || s.gen !== this.lib.generation || this.closed) return this.discard(s);
    const w = this.waiters.shift();
    if (w) w(s);
    else this.idle.push(s);
  }

  /** Closes a session (used after any error on it: it is never reused). */
  private discard(s: Session): void {
    this.closeSession(s);
    this.open = Math.max(0, this.open - 1);
    const w = this.waiters.shift();
    if (w) w(null);
  }

  private closeSession(s: Session): void {
    if (this.lib && this.lib.initialized && s.gen === this.lib.generation) {
      try {
        this.lib.p.C_CloseSession(s.h);
      } catch {
        /* already gone */
      }
    }
  }

  /**
   * Runs one HSM operation on a pooled session, with the error policy of the issue: connection
   * codes → reconnect and retry once; re-login / stale handles → look up again and retry once;
   * integrity codes (when `integrity`) → KEYS_INTEGRITY, never retried; anything else → 503.
   */
  private async run<T>(op: string, fn: (s: Buffer) => Promise<T>, integrity: boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      await this.ensureUp();
      let s: Session | undefined;
      this.busy++;
      const t0 = performance.now();
      try {
        s = await this.acquire();
        const r = await fn(s.h);
        this.lastLatencyMs = performance.now() - t0;
        this.operations++;
        this.release(s);
        return r;
      } catch (e) {
        if (s) this.discard(s);
        if (isAppError(e)) throw e;
        const ckr = ckrOf(e);
        if (ckr && CONNECTION_CODES.has(ckr)) {
          this.connectionLost(ckr);
          if (attempt === 0) continue;
          throw keysErrors.unavailable(`the HSM connection was lost during ${op} (${ckr})`, 'check that the HSM is reachable; Coffre reconnects by itself', e);
        }
        if (ckr && (RELOGIN_CODES.has(ckr) || STALE_HANDLE_CODES.has(ckr))) {
          this.up = false; // next ensureUp logs in again and forgets handles
          this.lastError = ckr;
          if (attempt === 0) continue;
          throw keysErrors.unavailable(`the HSM refused ${op} (${ckr})`, 'check the HSM session and keys.pinFile', e);
        }
        if (integrity && ckr && INTEGRITY_CODES.has(ckr)) {
          throw keysErrors.integrity(`the HSM rejected the ${op} input (${ckr}): it was altered or was not made with this key`, e);
        }
        throw keysErrors.unavailable(`the HSM refused ${op} (${ckr ?? (e as Error).message})`, 'check the HSM and the keys section of config.json', e);
      } finally {
        this.busy--;
      }
    }
  }

  // ---------------------------------------------------------------- objects

  private async find(s: Buffer, label: string, cls: number = pk.CKO_SECRET_KEY): Promise<Buffer[]> {
    this.p.C_FindObjectsInit(s, [attr(pk.CKA_CLASS, cls), attr(pk.CKA_TOKEN, true), attr(pk.CKA_LABEL, label)]);
    try {
      return this.p.C_FindObjects(s, 16);
    } finally {
      this.p.C_FindObjectsFinal(s);
    }
  }

  private async kekHandle(s: Buffer, version: number): Promise<Buffer> {
    const label = this.kekLabelOf(version);
    const cached = this.handles.get(label);
    if (cached) return cached;
    const found = await this.find(s, label);
    if (found.length === 0) throw keysErrors.unavailable(`KEK ${label} is not in the HSM (destroyed, or another token)`, 'check keys.tokenLabel and keys.kekLabel');
    if (found.length > 1) throw keysErrors.unavailable(`${found.length} keys in the HSM are labelled ${label}`, 'remove the duplicate from the HSM');
    this.handles.set(label, found[0]!);
    return found[0]!;
  }

  /** The HMAC key `label`, created on first use (generic secret, non-extractable, sign/verify). */
  private async macHandle(s: Buffer, label: string): Promise<Buffer> {
    const cached = this.handles.get(label);
    if (cached) return cached;
    let found = await this.find(s, label);
    if (found.length === 0) {
      await this.p.C_GenerateKeyAsync(s, { mechanism: pk.CKM_GENERIC_SECRET_KEY_GEN }, [
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
      found = await this.find(s, label);
    }
    // two processes may have created it at once: every process picks the one with the lowest CKA_ID
    const chosen =
      found.length === 1
        ? found[0]!
        : found
            .map((h) => ({ h, id: this.p.C_GetAttributeValue(s, h, [attr(pk.CKA_ID)])[0]!.value }))
            .sort((a, b) => Buffer.compare(a.id, b.id))[0]!.h;
    this.handles.set(label, chosen);
    return chosen;
  }

  private chooseMechanism(): WrapMechanism {
    const want = this.o.wrapMechanism ?? 'auto';
    const has = (m: number, flags: number) => {
      try {
        return (this.p.C_GetMechanismInfo(this.slot!, m).flags & flags) === flags;
      } catch {
        return false;
      }
    };
    const kwp = has(pk.CKM_AES_KEY_WRAP_PAD, pk.CKF_WRAP | pk.CKF_UNWRAP);
    const gcm = has(pk.CKM_AES_GCM, pk.CKF_ENCRYPT | pk.CKF_DECRYPT);
    if (want === 'CKM_AES_KEY_WRAP_PAD' || (want === 'auto' && kwp)) {
      if (!kwp) throw keysErrors.unavailable('the token does not wrap with CKM_AES_KEY_WRAP_PAD', 'check keys.wrapMechanism');
      return 'CKM_AES_KEY_WRAP_PAD';
    }
    if (!gcm) throw keysErrors.unavailable('the token offers neither CKM_AES_KEY_WRAP_PAD (wrap) nor CKM_AES_GCM (encrypt)', 'use an HSM with AES key wrapping');
    return 'CKM_AES_GCM';
  }

  /** AES-256 KEK generated inside the HSM: never extractable, sensitive, only the usages it needs. */
  private async generateKek(s: Buffer, label: string): Promise<Buffer> {
    const mech = this.chooseMechanism();
    const kwp = mech === 'CKM_AES_KEY_WRAP_PAD';
    const h = await this.p.C_GenerateKeyAsync(s, { mechanism: pk.CKM_AES_KEY_GEN }, [
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
    this.o.log?.info({ event: 'keys.kek_created', label, mechanism: mech }, 'key-encryption key created in the HSM');
    return h;
  }

  /** Lists `<kekLabel>-<n>` keys (labels read back from the HSM) and the mechanism of each. */
  private async readVersions(s: Buffer): Promise<void> {
    const re = new RegExp(`^${this.o.kekLabel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)$`);
    this.p.C_FindObjectsInit(s, [attr(pk.CKA_CLASS, pk.CKO_SECRET_KEY), attr(pk.CKA_TOKEN, true), attr(pk.CKA_KEY_TYPE, pk.CKK_AES)]);
    const all: Buffer[] = [];
    try {
      for (;;) {
        const batch = this.p.C_FindObjects(s, 64);
        if (batch.length === 0) break;
        all.push(...batch);
      }
    } finally {
      this.p.C_FindObjectsFinal(s);
    }
    const versions: number[] = [];
    this.versionMech.clear();
    for (const h of all) {
      const [label, wrap, enc] = this.p.C_GetAttributeValue(s, h, [attr(pk.CKA_LABEL), attr(pk.CKA_WRAP), attr(pk.CKA_ENCRYPT)]);
      const m = re.exec(label!.value.toString('utf8'));
      if (!m) continue;
      const v = Number(m[1]);
      versions.push(v);
      this.handles.set(this.kekLabelOf(v), h);
      this.versionMech.set(v, bool(wrap!.value) ? 'CKM_AES_KEY_WRAP_PAD' : bool(enc!.value) ? 'CKM_AES_GCM' : 'CKM_AES_KEY_WRAP_PAD');
    }
    this.versions = [...new Set(versions)].sort((a, b) => a - b);
    this.versionsReadAt = performance.now();
  }

  private readKekAttributes(s: Buffer, version: number, h: Buffer): KekAttributes {
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
    const v = this.p.C_GetAttributeValue(s, h, types.map((t) => attr(t))).map((a) => a.value);
    const num = (b: Buffer | undefined) => (b && b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b && b.length >= 4 ? b.readUInt32LE(0) : -1);
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

  private gcm(iv: Buffer, label: string) {
    return {
      mechanism: pk.CKM_AES_GCM,
      parameter: { type: pk.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad: Buffer.from(`coffre-dek\0${label}`), tagBits: 128 },
    };
  }
}
