/**
 * A real SoftHSM2 token for tests (no mock of the HSM).
 *
 * THE CONSTRAINT: one SoftHSM2 configuration per process at a time. SoftHSM2 reads SOFTHSM2_CONF
 * only inside C_Initialize, and pkcs11js (dlopen) shares one loaded library per process. vitest runs
 * each test file in its own forked process (vitest.config.ts `pool: 'forks'`), so this helper
 * creates ONE SoftHSM2 configuration per test file (lazily, in a temp dir removed at exit) and puts
 * every token of the file in its token directory. Each `createTestToken()` is a fresh token with its
 * own random user PIN in a 0600 file; the PIN never appears anywhere else.
 *
 * To run an appliance in a test, use `createTestAppliance()` (test/support/appliance.ts), which
 * passes a token from here to `initAppliance({ hsm })`. An appliance made by a plain `coffre init`
 * (its own SoftHSM2 configuration under its data dir) works too, but not while a token from here is
 * open in the same process: the provider then reports KEYS_UNAVAILABLE saying so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { KeysSection, type KeysConfig } from '../../src/config/sections/keys.js';
import {
  SOFTHSM_MODULE,
  createSoftHsmToken,
  writeSoftHsmConf,
  type KeysFileSection,
} from '../../src/keys/bootstrap.js';

export interface TestToken {
  /** this process's SoftHSM2 directory (configuration and token directory) */
  dir: string;
  conf: string;
  tokenDir: string;
  module: string;
  label: string;
  serial: string;
  /** 0600 file holding the random user PIN */
  pinFile: string;
  kekLabel: string;
  /** the `keys` section for config.json or `initAppliance({ hsm })` (absolute paths) */
  section: KeysFileSection;
  /** a complete KeysConfig (defaults applied) for `openKeys` / `createKeyProvider` */
  config(over?: Partial<KeysConfig>): KeysConfig;
}

let processDir: { dir: string; conf: string; tokenDir: string } | undefined;

/** The SoftHSM2 configuration of this process (one per test file). */
export function softHsmDir(): { dir: string; conf: string; tokenDir: string } {
  if (processDir) return processDir;
  if (!fs.existsSync(SOFTHSM_MODULE))
    throw new Error(`SoftHSM2 is not installed (${SOFTHSM_MODULE}); run ./scripts/test, which installs it`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `coffre-softhsm-${process.pid}-`));
  fs.chmodSync(dir, 0o700);
  const conf = path.join(dir, 'softhsm2.conf');
  const tokenDir = path.join(dir, 'tokens');
  writeSoftHsmConf(conf, tokenDir);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  processDir = { dir, conf, tokenDir };
  return processDir;
}

/** A fresh initialized token (random label unless given) with a random PIN in a 0600 file. */
export function createTestToken(o: { label?: string; kekLabel?: string } = {}): TestToken {
  const { dir, conf, tokenDir } = softHsmDir();
  const label = o.label ?? `t-${crypto.randomBytes(6).toString('hex')}`;
  const pinFile = path.join(dir, `${label}.pin`);
  const info = createSoftHsmToken(conf, label, pinFile);
  const kekLabel = o.kekLabel ?? 'coffre-kek';
  const section: KeysFileSection = {
    type: 'pkcs11',
    module: SOFTHSM_MODULE,
    tokenLabel: label,
    pinFile,
    softhsmConfFile: conf,
    kekLabel,
  };
  return {
    dir,
    conf,
    tokenDir,
    module: SOFTHSM_MODULE,
    label,
    serial: info.serial,
    pinFile,
    kekLabel,
    section,
    config: (over = {}) => ({ ...(Value.Default(KeysSection, structuredClone(section)) as KeysConfig), ...over }),
  };
}
