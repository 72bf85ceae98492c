import path from 'node:path';
import type { KeysConfig } from '../config/sections/keys.js';

/** What an appliance on the embedded SoftHSM2 token says about it (init, serve, keys status, the console). */
export interface EmbeddedTokenNotice {
  evaluationOnly: true;
  /** the SoftHSM2 configuration naming the token directory */
  tokenConfig: string | null;
  /** where the token's PIN is: a file, or a systemd credential (sealed with the TPM where there is one) */
  pinStore: 'file' | 'systemd-credential';
  message: string;
}

/**
 * The embedded token is SoftHSM2, a software token: its key files and its PIN are on this
 * machine's disk, so whoever copies the disk (or a VM snapshot, or a file backup of it) holding
 * both can decrypt everything. Fine to evaluate Coffre; not a production HSM. Undefined for any
 * other PKCS#11 module (a customer HSM).
 */
export function embeddedTokenNotice(
  cfg: Pick<KeysConfig, 'module' | 'softhsmConfFile' | 'pinFile'>,
): EmbeddedTokenNotice | undefined {
  if (!/softhsm/i.test(path.basename(cfg.module))) return undefined;
  const credential = cfg.pinFile.startsWith('credential:');
  const where = `${cfg.softhsmConfFile ? `token configured by ${cfg.softhsmConfFile}` : 'default SoftHSM2 token directory'}, PIN ${credential ? 'in a systemd credential' : `in ${cfg.pinFile}`}`;
  return {
    evaluationOnly: true,
    tokenConfig: cfg.softhsmConfFile ?? null,
    pinStore: credential ? 'systemd-credential' : 'file',
    message:
      `EVALUATION ONLY: the keys are in the embedded SoftHSM2 software token (${where}). ` +
      `A copy of this machine's disk, a VM snapshot or a file backup that holds the token ${credential ? 'and the machine key that opens its PIN credential (no TPM)' : 'and its PIN'} decrypts every document. ` +
      'A production HSM (Thales Luna, Entrust nShield, YubiHSM 2, or a network HSM through p11-kit) keeps the key-encryption key in hardware that never releases it: ' +
      'a copy of the disk then decrypts nothing without the HSM. Runbook: docs/hsm.md.',
  };
}
