import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Stock GnuPG (Debian 12: 2.2) in a throw-away home: the customer's offline escrow key, for the
 * interop tests. `close` stops its agent and removes the home.
 */
export interface Gpg {
  home: string;
  /** armored public key of the generated escrow key */
  publicKey: string;
  fingerprint: string;
  /** runs gpg with this home; throws with stderr on failure */
  run(args: string[], input?: Buffer): Buffer;
  close(): void;
}

export function gpgVersion(): string {
  return execFileSync('gpg', ['--version']).toString().split('\n')[0]!;
}

/**
 * Generates a key pair: `cv25519` (gpg's default ECDH) or `rsa3072`; `at` backdates its creation
 * (gpg --faked-system-time) for tests on a FakeClock.
 */
export function createGpg(algo: 'cv25519' | 'rsa3072' = 'cv25519', o: { at?: Date } = {}): Gpg {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gpg-'));
  fs.chmodSync(home, 0o700);
  const run = (args: string[], input?: Buffer): Buffer => {
    const r = spawnSync(
      'gpg',
      ['--homedir', home, '--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      { input, maxBuffer: 1 << 30 },
    );
    if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
    return r.stdout;
  };
  const [primary, sub] = algo === 'cv25519' ? ['ed25519', 'cv25519'] : ['rsa3072', 'rsa3072'];
  const faked = o.at ? ['--faked-system-time', `${Math.floor(o.at.getTime() / 1000)}!`] : [];
  run([...faked, '--quick-gen-key', 'Coffre Escrow <escrow@example.fr>', primary, 'sign', 'never']);
  const fpr = run(['--list-keys', '--with-colons'])
    .toString()
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
  run([...faked, '--quick-add-key', fpr, sub, 'encr', 'never']);
  const publicKey = run(['--export', '--armor', fpr]).toString();
  return {
    home,
    publicKey,
    fingerprint: fpr,
    run,
    close: () => {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
