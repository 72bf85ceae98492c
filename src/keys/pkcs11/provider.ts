import type { Logger } from '../../shared/logger.js';
import { keysErrors } from '../errors.js';
import type {
  KekAdmin,
  KekAttributes,
  KeyEvent,
  KeyEvents,
  KeyHealth,
  KeyProvider,
  SigningKeyAttributes,
  SigningKeys,
  TokenInfo,
  WrappedKey,
} from '../types.js';
import type { EngineOptions, WrapMechanism } from './engine.js';
import type { EngineOp, Notice } from './protocol.js';
import { Pkcs11Thread } from './thread.js';

export type { WrapMechanism } from './engine.js';

export interface Pkcs11ProviderOptions extends EngineOptions {
  log?: Logger | undefined;
  /** deadline of each HSM operation (wrap, unwrap, MAC, probe): past it, 503 and the HSM counts as hung (default 800 ms) */
  callTimeoutMs?: number | undefined;
  /** deadline of connecting, logging in and KEK administration (default 15 s) */
  connectTimeoutMs?: number | undefined;
  /** how often the HSM is probed without traffic (the current KEK looked up by label); 0: never (default 5 s) */
  probeIntervalMs?: number | undefined;
}

/** Operations under the short deadline; the others (connect, administration) get connectTimeoutMs. */
const FAST: ReadonlySet<EngineOp> = new Set([
  'wrap',
  'unwrap',
  'rewrap',
  'mac',
  'verifyMac',
  'signDigest',
  'ping',
  'probe',
  'mechanism',
  'currentKekVersion',
  'stats',
]);

/** an exact-size copy: a view into a pooled buffer would clone the whole pool slab across threads */
const u8 = (b: Buffer) => new Uint8Array(b);
const toBuffer = (u: unknown) => {
  const x = u as Uint8Array;
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
};
const wrappedOut = (v: unknown): WrappedKey => {
  const w = v as WrappedKey;
  return { kekLabel: w.kekLabel, kekVersion: w.kekVersion, mechanism: w.mechanism, wrapped: toBuffer(w.wrapped) };
};
const wrappedIn = (w: WrappedKey) => ({
  kekLabel: w.kekLabel,
  kekVersion: w.kekVersion,
  mechanism: w.mechanism,
  wrapped: u8(w.wrapped),
});

/**
 * KeyProvider and KekAdmin over a PKCS#11 module. This object lives on the main thread and holds
 * no PKCS#11 state: the module, the login, the sessions and every call run on the PKCS#11 worker
 * thread (./thread.ts, ./host.ts, ./engine.ts), so a hanging HSM never blocks the event loop.
 *
 * - Every call has a deadline (`callTimeoutMs` for operations, `connectTimeoutMs` for connecting and
 *   administration). Past it: 503 KEYS_UNAVAILABLE, the provider is down, and later calls fail at
 *   once until the HSM answers again (then it is up again by itself, no restart).
 * - It never throws from `open()`: a provider that cannot reach the HSM is "down", answers every
 *   call with KEYS_UNAVAILABLE (503) and keeps reconnecting in the background (engine).
 * - `on()` tells the appliance when the HSM goes down or comes back, and when a KEK it needs is
 *   missing from the HSM (alerts, dropping cached data keys).
 */
export class Pkcs11KeyProvider implements KeyProvider, KekAdmin, KeyEvents, SigningKeys {
  private readonly thread: Pkcs11Thread;
  private readonly pid: number;
  private engine: KeyHealth = { up: false, reconnects: 0, operations: 0 };
  private stalledFor: string | undefined;
  private wasUp = false;
  private closed = false;
  private probing = false;
  private readonly probeTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(e: KeyEvent) => void>();
  private readonly o: Pkcs11ProviderOptions;

  private constructor(o: Pkcs11ProviderOptions) {
    this.o = o;
    this.thread = Pkcs11Thread.acquire();
    this.pid = this.thread.register({
      notice: (n) => this.onNotice(n),
      health: (h) => {
        this.engine = h;
        this.changed(h.lastError ?? 'HSM unavailable');
      },
      stalled: (on) => {
        this.stalledFor = on ? 'no answer from the HSM within keys.callTimeoutMs' : undefined;
        this.changed(this.stalledFor ?? 'HSM unavailable');
      },
    });
    const every = o.probeIntervalMs ?? 5_000;
    if (every > 0) {
      this.probeTimer = setInterval(() => this.probe(), every);
      this.probeTimer.unref();
    }
  }

  /** Opens the provider and tries to connect once. Never throws for an unreachable HSM: see `ready()`. */
  static async open(o: Pkcs11ProviderOptions): Promise<Pkcs11KeyProvider> {
    const p = new Pkcs11KeyProvider(o);
    const { log: _log, ...options } = o;
    await p.thread.request(p.pid, 'open', { options }, p.connectTimeout).catch(() => undefined);
    return p;
  }

  private get connectTimeout(): number {
    return this.o.connectTimeoutMs ?? 15_000;
  }

  private async call<T>(op: EngineOp, args: unknown[] = [], map: (v: unknown) => T = (v) => v as T): Promise<T> {
    if (this.closed) throw keysErrors.unavailable('the key provider is closed');
    const timeout = FAST.has(op) ? (this.o.callTimeoutMs ?? 800) : this.connectTimeout;
    const r = await this.thread.request(this.pid, op, { args }, timeout);
    return map(r.value);
  }

  // ---------------------------------------------------------------- KeyProvider

  wrap(dek: Buffer): Promise<WrappedKey> {
    return this.call('wrap', [u8(dek)], wrappedOut);
  }

  unwrap(w: WrappedKey): Promise<Buffer> {
    return this.call('unwrap', [wrappedIn(w)], toBuffer);
  }

  rewrap(w: WrappedKey, toVersion: number): Promise<WrappedKey> {
    return this.call('rewrap', [wrappedIn(w), toVersion], wrappedOut);
  }

  mac(keyName: string, data: Buffer, o: { create?: boolean } = {}): Promise<Buffer> {
    return this.call('mac', [keyName, u8(data), o.create ?? true], toBuffer);
  }

  destroyMacKey(keyName: string): Promise<boolean> {
    return this.call('destroyMacKey', [keyName]);
  }

  createMacKey(keyName: string): Promise<void> {
    return this.call('createMacKey', [keyName]);
  }

  verifyMac(keyName: string, data: Buffer, mac: Buffer): Promise<boolean> {
    return this.call('verifyMac', [keyName, u8(data), u8(mac)]);
  }

  // ---------------------------------------------------------------- SigningKeys

  signingPublicKey(name: string, o: { create?: boolean } = {}): Promise<Buffer> {
    return this.call('signingPublicKey', [name, o.create === true], toBuffer);
  }

  signDigest(name: string, digest: Buffer): Promise<Buffer> {
    return this.call('signDigest', [name, u8(digest)], toBuffer);
  }

  signingKeyAttributes(name: string): Promise<SigningKeyAttributes> {
    return this.call('signingKeyAttributes', [name]);
  }

  health(): KeyHealth {
    const up = this.engine.up && !this.stalledFor && !this.closed;
    const lastError = this.stalledFor ? 'CKR_TIMEOUT (no answer within keys.callTimeoutMs)' : this.engine.lastError;
    return { ...this.engine, up, ...(lastError !== undefined ? { lastError } : {}) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (!this.thread.stalled)
      await this.thread.request(this.pid, 'close', {}, this.connectTimeout).catch(() => undefined);
    this.thread.unregister(this.pid);
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- KeyEvents

  on(listener: (e: KeyEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: KeyEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.o.log?.error({ err }, 'a keys event listener failed');
      }
    }
  }

  private changed(reason: string): void {
    const up = this.health().up;
    if (up === this.wasUp || this.closed) return;
    this.wasUp = up;
    this.emit(up ? { kind: 'up' } : { kind: 'down', reason });
  }

  private onNotice(n: Notice): void {
    if (n.event === 'log') {
      this.o.log?.[n.level](n.obj, n.msg);
      return;
    }
    this.engine = n.health;
    if (n.event === 'kek-missing') this.emit({ kind: 'kek-missing', label: n.label });
    this.changed(n.health.lastError ?? 'HSM unavailable');
  }

  /** Without traffic too: a hung HSM or a pulled KEK is noticed within one probe interval. */
  private probe(): void {
    if (this.probing || this.closed || this.thread.stalled) return;
    this.probing = true;
    this.call('probe')
      .catch(() => undefined)
      .finally(() => (this.probing = false));
  }

  // ---------------------------------------------------------------- KekAdmin

  ready(): Promise<void> {
    return this.call('ready');
  }

  token(): Promise<TokenInfo> {
    return this.call('token');
  }

  kekVersions(): Promise<number[]> {
    return this.call('kekVersions');
  }

  currentKekVersion(): Promise<number> {
    return this.call('currentKekVersion');
  }

  kekAttributes(version: number): Promise<KekAttributes> {
    return this.call('kekAttributes', [version]);
  }

  createKekVersion(version: number): Promise<KekAttributes> {
    return this.call('createKekVersion', [version]);
  }

  destroyKekVersion(version: number): Promise<void> {
    return this.call('destroyKekVersion', [version]);
  }

  ping(): Promise<number> {
    return this.call('ping');
  }

  /** The wrapping mechanism of the current version (for status and tests). */
  mechanism(): Promise<WrapMechanism> {
    return this.call('mechanism');
  }

  /** Test hooks: C_Login calls made (a refused PIN is not tried again), operation sessions open. */
  stats(): Promise<{ loginAttempts: number; sessionsOpen: number }> {
    return this.call('stats');
  }
}
