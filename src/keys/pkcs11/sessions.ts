import { pk, type Pkcs11Library } from './library.js';

export interface Session {
  h: Buffer;
  /** the module generation it was opened in: a session of an older generation died with it */
  gen: number;
}

/**
 * The sessions of one provider on one token. Login belongs to the token, so the provider logs in
 * once, on the `anchor` session, which stays open and is never used for operations: closing an
 * errored session then never closes the token's last session (which would log it out). Operation
 * sessions are pooled (at most `max` open); a session that returned an error is closed, never
 * reused. No C_Logout ever (on any session it logs all of them out).
 */
export class SessionPool {
  private anchor: Session | undefined;
  private readonly idle: Session[] = [];
  /** operation sessions open (idle or in use) */
  open = 0;
  private readonly max: number;

  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** A new anchor after a (re)connect; the previous one is closed once the new one is in place. */
  setAnchor(lib: Pkcs11Library, s: Session | undefined): void {
    const old = this.anchor;
    this.anchor = s;
    if (old && old !== s) this.close(lib, old);
  }

  openOn(lib: Pkcs11Library, slot: Buffer): Session {
    return { h: lib.p.C_OpenSession(slot, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION), gen: lib.generation };
  }

  /** Forgets every operation session: closed if still alive, dropped if the module was reinitialized. */
  reset(lib: Pkcs11Library | undefined): void {
    for (const s of this.idle.splice(0)) if (lib) this.close(lib, s);
    this.open = 0;
  }

  acquire(lib: Pkcs11Library, slot: Buffer): Session {
    for (let s = this.idle.pop(); s; s = this.idle.pop()) {
      if (s.gen === lib.generation) return s;
      this.open--; // died with a reinitialization
    }
    if (this.open >= this.max) throw new Error('CKR_SESSION_COUNT: session pool exhausted');
    const s = this.openOn(lib, slot);
    this.open++;
    return s;
  }

  release(lib: Pkcs11Library, s: Session): void {
    if (s.gen !== lib.generation) return this.discard(lib, s);
    this.idle.push(s);
  }

  discard(lib: Pkcs11Library | undefined, s: Session): void {
    if (lib) this.close(lib, s);
    this.open = Math.max(0, this.open - 1);
  }

  closeAll(lib: Pkcs11Library | undefined): void {
    this.reset(lib);
    if (this.anchor && lib) this.close(lib, this.anchor);
    this.anchor = undefined;
  }

  private close(lib: Pkcs11Library, s: Session): void {
    if (!lib.initialized || s.gen !== lib.generation) return;
    try {
      lib.p.C_CloseSession(s.h);
    } catch {
      /* already gone */
    }
  }
}
