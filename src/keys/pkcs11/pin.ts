import crypto from 'node:crypto';
import type { PKCS11 } from 'pkcs11js';
import { isAppError } from '../../shared/errors.js';
import { readSecretFile } from '../../config/index.js';
import { keysErrors } from '../errors.js';
import { PIN_CODES, ckrOf } from './ckr.js';
import { pk } from './library.js';

export const PIN_HINT =
  'check keys.pinFile (a refused PIN is not tried again until that file changes: retries would lock the token)';

/**
 * The PIN guard: reads the user PIN from `keys.pinFile` at each login (never keeps it), and
 * remembers a PIN the token refused (by its SHA-256, in memory) so that it is never tried again
 * until the file changes: retrying a wrong PIN counts towards locking the token.
 */
export class PinGuard {
  private rejectedHash: string | undefined;
  /** the refused PIN's CKR code, repeated while the PIN file is unchanged */
  private rejectedCode = 'CKR_PIN_INCORRECT';
  /** C_Login calls made (tests check that a refused PIN is not tried again) */
  loginAttempts = 0;
  private readonly pinFile: string;

  constructor(pinFile: string) {
    this.pinFile = pinFile;
  }

  /** true while the last PIN tried was refused (a reconnect then does not reinitialize the module) */
  get refused(): boolean {
    return this.rejectedHash !== undefined;
  }

  /** Logs the token in on `session` (CKU_USER); a token already logged in by this process is fine. */
  login(p: PKCS11, session: Buffer, tokenLabel: string): void {
    const pin = this.read();
    const hash = crypto.createHash('sha256').update(pin).digest('hex');
    if (this.rejectedHash === hash)
      throw keysErrors.unavailable(
        `the HSM refused the PIN for token "${tokenLabel}" (${this.rejectedCode})`,
        PIN_HINT,
      );
    try {
      this.loginAttempts++;
      p.C_Login(session, pk.CKU_USER, pin);
    } catch (e) {
      const ckr = ckrOf(e);
      if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') {
        if (ckr && PIN_CODES.has(ckr)) {
          this.rejectedHash = hash;
          this.rejectedCode = ckr;
          throw keysErrors.unavailable(`the HSM refused the PIN for token "${tokenLabel}" (${ckr})`, PIN_HINT, e);
        }
        throw keysErrors.unavailable(
          `cannot log in to token "${tokenLabel}" (${ckr ?? (e as Error).message})`,
          'check the HSM and keys.pinFile',
          e,
        );
      }
    }
    this.rejectedHash = undefined;
  }

  private read(): string {
    try {
      const pin = readSecretFile(this.pinFile, 'keys.pinFile');
      if (!pin) throw keysErrors.unavailable(`the PIN file ${this.pinFile} is empty`, 'check keys.pinFile');
      return pin;
    } catch (e) {
      if (isAppError(e) && e.code === 'KEYS_UNAVAILABLE') throw e;
      // a systemd credential: say why (not loaded for this unit, not readable…); a file: its path says it
      const why =
        this.pinFile.startsWith('credential:') && isAppError(e)
          ? ` (${e.message.replace(/^keys\.pinFile: /, '')})`
          : '';
      throw keysErrors.unavailable(
        `cannot read the HSM PIN file ${this.pinFile}${why}`,
        'check keys.pinFile (it must be readable by the service user)',
        e,
      );
    }
  }
}
