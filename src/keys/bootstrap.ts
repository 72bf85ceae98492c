import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { AppError } from '../shared/errors.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface KeysBootstrap {
  /** the `keys` config section, paths relative to the data dir */
  keys: { type: 'pkcs11'; module: string; tokenLabel: string; pinFile: string; softhsmConfFile: string; kekLabel: string };
}

/**
 * Creates the default SoftHSM2 token under `<dataDir>/softhsm`, with a random user PIN in
 * `<dataDir>/secrets/hsm-pin` (0600).
 *
 * TODO(keys): replace softhsm2-util (PINs on its argv) by C_InitToken/C_InitPIN through pkcs11js,
 * and create the KEK here.
 */
export async function bootstrapDefaultToken(dataDir: string, applianceId: string): Promise<KeysBootstrap> {
  if (!fs.existsSync(SOFTHSM_MODULE)) {
    throw new AppError('KEYS_UNAVAILABLE', `SoftHSM2 is not installed (${SOFTHSM_MODULE} missing)`, { hint: 'run ./scripts/setup as root, or apt-get install softhsm2' });
  }
  const tokenDir = path.join(dataDir, 'softhsm', 'tokens');
  const conf = path.join(dataDir, 'softhsm', 'softhsm2.conf');
  const secrets = path.join(dataDir, 'secrets');
  fs.mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(secrets, { recursive: true, mode: 0o700 });
  fs.writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  const pin = crypto.randomBytes(24).toString('base64url');
  const soPin = crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(path.join(secrets, 'hsm-pin'), pin + '\n', { mode: 0o600 });
  const label = `coffre-${applianceId.slice(0, 8)}`;
  try {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    throw new AppError('KEYS_UNAVAILABLE', `could not create the SoftHSM2 token: ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? 'softhsm2-util failed'}`, { hint: 'check that softhsm2 is installed' });
  }
  return { keys: { type: 'pkcs11', module: SOFTHSM_MODULE, tokenLabel: label, pinFile: 'secrets/hsm-pin', softhsmConfFile: 'softhsm/softhsm2.conf', kekLabel: 'coffre-kek' } };
}
