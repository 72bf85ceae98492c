import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { PKCS11 } from 'pkcs11js';
import { keysErrors } from '../errors.js';
import { ckrOf } from './ckr.js';

const require = createRequire(import.meta.url);
/** pkcs11js is CommonJS and spreads its exports, so ESM named imports cannot see them. */
export const pk = require('pkcs11js') as typeof import('pkcs11js');

/**
 * One loaded PKCS#11 module, shared by every provider of this process.
 *
 * Constraints this object exists for:
 * - dlopen() returns the same library for the same path, so two `PKCS11` objects on one module
 *   share its global state: a second C_Initialize fails and one C_Finalize ends every session of
 *   every user. Hence one object per module path, reference-counted.
 * - SoftHSM2 reads SOFTHSM2_CONF at C_Initialize only: ONE SoftHSM configuration per process
 *   at a time. A provider asking for another configuration while the module is in use is refused;
 *   once every user has released it, the next acquire finalizes and re-initializes with the new one.
 * - C_Initialize always gets CKF_OS_LOCKING_OK: without it SoftHSM runs without locks and the
 *   async (thread-pool) calls of pkcs11js corrupt its heap.
 * - `generation` counts (re)initializations, so providers that share the module notice that their
 *   session handles died with a reconnect made by another provider.
 */
export class Pkcs11Library {
  readonly p: PKCS11;
  generation = 0;
  initialized = false;
  users = 0;
  conf: string | undefined;
  readonly modulePath: string;

  constructor(modulePath: string) {
    this.modulePath = modulePath;
    this.p = new pk.PKCS11();
    try {
      this.p.load(modulePath);
    } catch (e) {
      throw keysErrors.unavailable(
        `cannot load the PKCS#11 module ${modulePath} (${ckrOf(e) ?? (e as Error).message})`,
        'check keys.module',
        e,
      );
    }
  }

  /** (Re)initializes the module. SoftHSM reads SOFTHSM2_CONF here and only here. */
  initialize(): void {
    if (this.conf !== undefined) {
      // The one write to process.env outside config/: SoftHSM2 offers no other way to find its
      // configuration. It is read synchronously inside C_Initialize just below.
      process.env.SOFTHSM2_CONF = this.conf;
    }
    try {
      this.p.C_Initialize({ flags: pk.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (ckrOf(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        throw keysErrors.unavailable(
          `cannot initialize the PKCS#11 module (${ckrOf(e) ?? (e as Error).message})`,
          'check keys.module and the HSM client configuration',
          e,
        );
      }
    }
    this.initialized = true;
    this.generation++;
  }

  finalize(): void {
    if (!this.initialized) return;
    this.initialized = false;
    try {
      this.p.C_Finalize();
    } catch {
      /* a dead device may refuse even this; the library state is reset either way */
    }
  }

  /**
   * Reconnect: Finalize then Initialize, unless another user already did since `seenGeneration`.
   * Every session of every user of the module is gone afterwards.
   */
  reinitialize(seenGeneration: number): void {
    if (this.initialized && this.generation !== seenGeneration) return;
    this.finalize();
    this.initialize();
  }
}

const libraries = new Map<string, Pkcs11Library>();

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Takes a reference on the module at `modulePath`, initialized (with `softhsmConf` for SoftHSM2).
 * Release it with `releaseLibrary`; the last release finalizes the module.
 */
export function acquireLibrary(modulePath: string, softhsmConf?: string): Pkcs11Library {
  if (!fs.existsSync(modulePath))
    throw keysErrors.unavailable(`PKCS#11 module ${modulePath} not found`, 'check keys.module');
  const key = realpathOr(modulePath);
  let lib = libraries.get(key);
  if (!lib) {
    lib = new Pkcs11Library(modulePath);
    libraries.set(key, lib);
  }
  const conf = softhsmConf === undefined ? undefined : realpathOr(softhsmConf);
  if (lib.users > 0 && lib.conf !== conf && conf !== undefined) {
    throw keysErrors.unavailable(
      `this process already uses SoftHSM2 with ${lib.conf ?? 'the default configuration'}; SoftHSM2 allows one configuration (SOFTHSM2_CONF) per process`,
      'check keys.softhsmConfFile; tests: one SoftHSM2 configuration per test file (see test/support/softhsm.ts)',
    );
  }
  if (lib.users === 0 && lib.initialized && conf !== undefined && lib.conf !== conf) lib.finalize();
  if (conf !== undefined) lib.conf = conf;
  if (!lib.initialized) lib.initialize();
  lib.users++;
  return lib;
}

export function releaseLibrary(lib: Pkcs11Library): void {
  lib.users = Math.max(0, lib.users - 1);
  if (lib.users === 0) lib.finalize();
}

/** PKCS#11 text fields are blank-padded (some modules pad with NULs). */
export const trimPkcs11 = (s: string): string => s.replace(/[\s\0]+$/u, '');

/** A label padded with blanks to 32 bytes, as C_InitToken expects (pkcs11js pads with NULs). */
export function padLabel(label: string): string {
  if (Buffer.byteLength(label) > 32) throw keysErrors.usage(`token label "${label}" is longer than 32 bytes`);
  return label + ' '.repeat(32 - Buffer.byteLength(label));
}

/** CK_SLOT_ID of a slot handle (pkcs11js gives handles as native-endian buffers). */
export function slotId(h: Buffer): number {
  return h.length >= 8 ? Number(h.readBigUInt64LE(0)) : h.readUInt32LE(0);
}
