import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface FoundSeed {
  text: string;
  source: string;
  /** a writable copy that must be destroyed once applied (it may hold the PIN or a TLS key) */
  deleteAfter?: string;
}

/** Where seed files are looked for, in this order (docs/appliance.md "Seed file"). */
export const SEED_FILE = '/etc/coffre/seed.json';
export const FW_CFG_SEED = '/sys/firmware/qemu_fw_cfg/by_name/opt/coffre/seed/raw';
export const SEED_LABEL = 'COFFRESEED';
export const SEED_NAME = 'coffre-seed.json';

const quiet = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
};

/**
 * Finds a seed: /etc/coffre/seed.json (baked into a derived image), the QEMU firmware config
 * entry opt/coffre/seed (`-fw_cfg name=opt/coffre/seed,file=seed.json`), or a file system labelled
 * COFFRESEED (an ISO, a small vfat or ext4 disk) holding coffre-seed.json. Undefined: none.
 */
export function findSeed(log: (m: string) => void): FoundSeed | undefined {
  if (fs.existsSync(SEED_FILE))
    return { text: fs.readFileSync(SEED_FILE, 'utf8'), source: SEED_FILE, deleteAfter: SEED_FILE };
  quiet('modprobe', ['-q', 'qemu_fw_cfg']);
  if (fs.existsSync(FW_CFG_SEED))
    return { text: fs.readFileSync(FW_CFG_SEED, 'utf8'), source: 'qemu fw_cfg opt/coffre/seed' };
  quiet('udevadm', ['settle', '--timeout=15']);
  const dev = `/dev/disk/by-label/${SEED_LABEL}`;
  if (fs.existsSync(dev)) {
    const mnt = '/run/coffre-seed';
    fs.mkdirSync(mnt, { recursive: true, mode: 0o700 });
    if (!quiet('mount', ['-o', 'ro,nosuid,nodev,noexec', dev, mnt])) {
      log(`found ${dev} but could not mount it`);
      return undefined;
    }
    try {
      const f = `${mnt}/${SEED_NAME}`;
      if (fs.existsSync(f)) return { text: fs.readFileSync(f, 'utf8'), source: `${dev} (${SEED_NAME})` };
      log(`${dev} has no ${SEED_NAME}`);
    } finally {
      quiet('umount', [mnt]);
    }
  }
  return undefined;
}

/** Overwrites then removes a seed copy that may hold secrets. */
export function destroySeed(file: string): void {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(size));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } finally {
    fs.rmSync(file, { force: true });
  }
}
