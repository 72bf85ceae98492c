import type { PKCS11 } from 'pkcs11js';
import { isAppError, type AppError } from '../../shared/errors.js';
import { keysErrors } from '../errors.js';
import type { KeyHealth, TokenInfo } from '../types.js';
import { CONNECTION_CODES, INTEGRITY_CODES, RELOGIN_CODES, STALE_HANDLE_CODES, ckrOf } from './ckr.js';
import { acquireLibrary, releaseLibrary, type Pkcs11Library } from './library.js';
import { PinGuard } from './pin.js';
import { SessionPool, type Session } from './sessions.js';
import { findSlot } from './token.js';

export interface ConnectionOptions {
  module: string;
  slot?: number | undefined;
  tokenLabel?: string | undefined;
  pinFile: string;
  /** SoftHSM2 only: SOFTHSM2_CONF for this process */
  softhsmConfFile?: string | undefined;
  sessionPoolSize: number;
  /** reconnect back-off (default 500 ms doubling to 30 s) */
  backoff?: { initialMs: number; maxMs: number } | undefined;
}

export interface ConnectionEvents {
  log(level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string): void;
  /** up or down changed, outside of a reply (background reconnect) */
  changed(): void;
}

/**
 * One provider's connection to its token: the loaded module, the slot, the login (through the
 * PIN guard), the sessions, and the reconnection policy. Runs on the PKCS#11 worker thread, where
 * blocking calls are fine: the main thread puts a deadline on each request.
 *
 * - C_Initialize with CKF_OS_LOCKING_OK (library.ts); object handles are looked up again after
 *   any re-login or reconnect (`afterLogin` and `forget`).
 * - Only connection-type CKR codes trigger a reconnect (Finalize, Initialize, login, lookup), with
 *   exponential back-off and a background retry; integrity failures are never retried; a refused
 *   PIN is never retried until the PIN file changes.
 */
export class Connection {
  lib: Pkcs11Library | undefined;
  private libGen = -1;
  private needReinit = false;
  slot: Buffer | undefined;
  tokenInfo: TokenInfo | undefined;
  up = false;
  private closed = false;
  private lastErr: AppError | undefined;
  private lastError: string | undefined;
  private lastLatencyMs: number | undefined;
  private reconnects = 0;
  private connectedOnce = false;
  private operations = 0;
  private backoffMs = 0;
  private nextAttemptAt = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly pin: PinGuard;
  readonly sessions: SessionPool;
  private readonly o: ConnectionOptions;
  private readonly events: ConnectionEvents;
  /** after each login, on the anchor session: read the KEK versions (and create the first) */
  private readonly afterLogin: (p: PKCS11, s: Buffer) => void;
  /** what the connected log line says about the keys */
  private readonly describe: () => Record<string, unknown>;
  /** handles died: forget cached object handles */
  private readonly forget: () => void;

  constructor(
    o: ConnectionOptions,
    events: ConnectionEvents,
    hooks: { afterLogin: (p: PKCS11, s: Buffer) => void; describe: () => Record<string, unknown>; forget: () => void },
  ) {
    this.o = o;
    this.events = events;
    this.afterLogin = hooks.afterLogin;
    this.describe = hooks.describe;
    this.forget = hooks.forget;
    this.pin = new PinGuard(o.pinFile);
    this.sessions = new SessionPool(o.sessionPoolSize);
  }

  get p(): PKCS11 {
    if (!this.lib) throw keysErrors.unavailable('the PKCS#11 module is not loaded', 'check keys.module');
    return this.lib.p;
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

  ensureUp(): void {
    if (this.closed) throw keysErrors.unavailable('the key provider is closed');
    if (this.up) return;
    if (performance.now() < this.nextAttemptAt && this.lastErr) throw this.lastErr;
    this.reconnect();
  }

  reconnect(): void {
    try {
      this.connectOnce();
      if (this.connectedOnce) this.reconnects++;
      this.connectedOnce = true;
      this.up = true;
      this.backoffMs = 0;
      this.nextAttemptAt = 0;
      this.lastErr = undefined;
      this.events.log(
        'info',
        { event: 'keys.connected', tokenLabel: this.tokenInfo?.label, ...this.describe() },
        'HSM connected',
      );
    } catch (e) {
      const err = isAppError(e)
        ? e
        : keysErrors.unavailable(`cannot use the HSM (${ckrOf(e) ?? (e as Error).message})`, undefined, e);
      // a module whose connection broke (a network HSM's client library) only reconnects when it
      // is initialized again: the next attempt does that, unless the PIN was the problem or
      // other providers of this process are using the module (connection codes reinitialize anyway)
      if (!this.pin.refused && (this.lib?.users ?? 0) <= 1) this.needReinit = true;
      this.markDown(err);
      throw err;
    }
  }

  /** Down until a reconnect works: every call fails with `err` until the next attempt is due. */
  markDown(err: AppError): void {
    this.up = false;
    this.lastErr = err;
    this.lastError = /\((CKR_[A-Z0-9_]+)\)/.exec(err.message)?.[1] ?? err.message;
    const b = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.backoffMs = this.backoffMs ? Math.min(b.maxMs, this.backoffMs * 2) : b.initialMs;
    this.nextAttemptAt = performance.now() + this.backoffMs;
    this.events.log('warn', { event: 'keys.down', error: err.message, retryInMs: this.backoffMs }, 'HSM unavailable');
    if (this.timer) clearTimeout(this.timer);
    if (!this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.up || this.closed) return;
        try {
          this.reconnect();
        } catch {
          /* down: markDown scheduled the next attempt */
        }
        if (this.up) this.events.changed();
      }, this.backoffMs);
    }
  }

  /** Connection lost during an operation: the next call reconnects at once (then backs off). */
  private connectionLost(ckr: string): void {
    this.up = false;
    this.needReinit = true;
    this.forget();
    this.lastError = ckr;
    this.events.log('warn', { event: 'keys.connection_lost', ckr }, 'HSM connection lost');
  }

  private connectOnce(): void {
    if (!this.lib) {
      this.lib = acquireLibrary(this.o.module, this.o.softhsmConfFile);
      this.needReinit = false;
    } else if (this.needReinit || !this.lib.initialized) {
      // every session of this module is gone after this: forget ours without closing them
      this.lib.reinitialize(this.libGen);
      this.needReinit = false;
    }
    const lib = this.lib;
    if (this.libGen !== lib.generation) {
      this.sessions.reset(undefined);
      this.libGen = lib.generation;
    } else {
      this.sessions.reset(lib);
    }
    this.forget();
    const { handle, token } = findSlot(lib, { slot: this.o.slot, tokenLabel: this.o.tokenLabel });
    this.slot = handle;
    this.tokenInfo = { module: this.o.module, ...token };
    const s: Session = this.sessions.openOn(lib, handle);
    try {
      this.pin.login(lib.p, s.h, token.label);
      this.afterLogin(lib.p, s.h);
      this.sessions.setAnchor(lib, s);
    } catch (e) {
      try {
        lib.p.C_CloseSession(s.h);
      } catch {
        /* gone */
      }
      throw e;
    }
  }

  /**
   * Runs one HSM operation on a pooled session, with the error policy: connection codes →
   * reconnect and retry once; re-login / stale handles → look up again and retry once; integrity
   * codes (when `integrity`) → KEYS_INTEGRITY, never retried; anything else → 503.
   */
  run<T>(op: string, fn: (p: PKCS11, s: Buffer) => T, integrity: boolean): T {
    for (let attempt = 0; ; attempt++) {
      this.ensureUp();
      const lib = this.lib!;
      let s: Session | undefined;
      const t0 = performance.now();
      try {
        s = this.sessions.acquire(lib, this.slot!);
        const r = fn(lib.p, s.h);
        this.lastLatencyMs = performance.now() - t0;
        if (op !== 'probe') this.operations++;
        this.sessions.release(lib, s);
        return r;
      } catch (e) {
        if (s) this.sessions.discard(lib, s);
        if (isAppError(e)) throw e;
        const ckr = ckrOf(e);
        if (ckr && CONNECTION_CODES.has(ckr)) {
          this.connectionLost(ckr);
          if (attempt === 0) continue;
          throw keysErrors.unavailable(
            `the HSM connection was lost during ${op} (${ckr})`,
            'check that the HSM is reachable; Coffre reconnects by itself',
            e,
          );
        }
        if (ckr && (RELOGIN_CODES.has(ckr) || STALE_HANDLE_CODES.has(ckr))) {
          this.up = false; // the next ensureUp logs in again and forgets handles
          this.lastError = ckr;
          if (attempt === 0) continue;
          throw keysErrors.unavailable(`the HSM refused ${op} (${ckr})`, 'check the HSM session and keys.pinFile', e);
        }
        if (integrity && ckr && INTEGRITY_CODES.has(ckr)) {
          throw keysErrors.integrity(
            `the HSM rejected the ${op} input (${ckr}): it was altered or was not made with this key`,
            e,
          );
        }
        throw keysErrors.unavailable(
          `the HSM refused ${op} (${ckr ?? (e as Error).message})`,
          'check the HSM and the keys section of config.json',
          e,
        );
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.sessions.closeAll(this.lib);
    this.up = false;
    if (this.lib) releaseLibrary(this.lib);
    this.lib = undefined;
  }
}
