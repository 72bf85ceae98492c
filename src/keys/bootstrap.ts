import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { KeysSection, type KeysConfig } from '../config/sections/keys.js';
import { resolveConfigPath } from '../config/index.js';
import { keysErrors } from './errors.js';
import { acquireLibrary, releaseLibrary } from './pkcs11/library.js';
import { initToken } from './pkcs11/token.js';
import { createKeyProvider } from './registry.js';
import type { KekAttributes, TokenInfo } from './types.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** The `keys` config section as written to config.json (paths relative to the data dir where ours). */
export type KeysFileSection = { type: 'pkcs11'; module: string; pinFile: string; kekLabel: string } & Partial<
  Pick<KeysConfig, 'slot' | 'tokenLabel' | 'softhsmConfFile' | 'wrapMechanism'>
>;

export interface KeysBootstrap {
  keys: KeysFileSection;
  token: TokenInfo;
  kek: KekAttributes;
}

/** Writes a SoftHSM2 configuration whose token directory is `tokenDir`. */
export function writeSoftHsmConf(conf: string, tokenDir: string): void {
  fs.mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    conf,
    `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    { mode: 0o600 },
  );
}

/** A random PIN in a new 0600 file (never on a command line, never printed). */
export function writePinFile(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const pin = crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(file, pin + '\n', { mode: 0o600, flag: 'wx' });
  return pin;
}

/**
 * Creates a SoftHSM2 token labelled `label` in the token directory of `conf`, with a random user
 * PIN written to `pinFile` (0600), through C_InitToken/C_InitPIN. The SO PIN is random and not
 * kept: the token's user PIN cannot be reset, only the token replaced (its keys are in the backup
 * of the token directory).
 */
export function createSoftHsmToken(conf: string, label: string, pinFile: string): TokenInfo {
  const pin = writePinFile(pinFile);
  const soPin = crypto.randomBytes(24).toString('base64url');
  const lib = acquireLibrary(SOFTHSM_MODULE, conf);
  try {
    return { module: SOFTHSM_MODULE, ...initToken(lib, label, soPin, pin) };
  } finally {
    releaseLibrary(lib);
  }
}

/**
 * Finds or creates KEK version 1 on the configured token and reads its attributes back
 * (`coffre init` with a customer HSM, `coffre keys init`). Fails with KEYS_UNAVAILABLE.
 */
export async function ensureKek(cfg: KeysConfig): Promise<{ token: TokenInfo; kek: KekAttributes }> {
  const provider = await createKeyProvider(cfg, { createKek: true });
  try {
    await provider.ready();
    const token = await provider.token();
    const kek = await provider.kekAttributes(await provider.currentKekVersion());
    if (kek.extractable || !kek.sensitive) {
      throw keysErrors.unavailable(
        `KEK ${kek.label} is ${kek.extractable ? 'extractable' : 'not sensitive'}: refusing to use it`,
        'create a new KEK version with CKA_EXTRACTABLE=false, CKA_SENSITIVE=true',
      );
    }
    return { token, kek };
  } finally {
    await provider.close();
  }
}

const resolved = (dataDir: string, s: KeysFileSection): KeysConfig => {
  const c = Value.Default(KeysSection, structuredClone(s)) as KeysConfig;
  const abs = (p: string) => path.resolve(dataDir, p);
  return {
    ...c,
    module: abs(c.module),
    pinFile: resolveConfigPath(dataDir, c.pinFile),
    ...(c.softhsmConfFile ? { softhsmConfFile: abs(c.softhsmConfFile) } : {}),
  };
};

/**
 * `coffre init`: with no HSM given, creates the default SoftHSM2 token under `<dataDir>/softhsm`
 * (PIN in `<dataDir>/secrets/hsm-pin`, 0600) and its KEK; with `hsm`, uses that token and finds or
 * creates the KEK there.
 */
export async function bootstrapKeys(
  dataDir: string,
  applianceId: string,
  hsm?: KeysFileSection,
): Promise<KeysBootstrap> {
  let section: KeysFileSection;
  if (hsm) {
    section = hsm;
  } else {
    if (!fs.existsSync(SOFTHSM_MODULE)) {
      throw keysErrors.unavailable(
        `SoftHSM2 is not installed (${SOFTHSM_MODULE} missing)`,
        'run ./scripts/setup as root, or apt-get install softhsm2',
      );
    }
    const conf = path.join(dataDir, 'softhsm', 'softhsm2.conf');
    writeSoftHsmConf(conf, path.join(dataDir, 'softhsm', 'tokens'));
    const label = `coffre-${applianceId.slice(0, 8)}`;
    createSoftHsmToken(conf, label, path.join(dataDir, 'secrets', 'hsm-pin'));
    section = {
      type: 'pkcs11',
      module: SOFTHSM_MODULE,
      tokenLabel: label,
      pinFile: 'secrets/hsm-pin',
      softhsmConfFile: 'softhsm/softhsm2.conf',
      kekLabel: 'coffre-kek',
    };
  }
  const { token, kek } = await ensureKek(resolved(dataDir, section));
  return { keys: section, token, kek };
}
