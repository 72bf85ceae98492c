import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/main.js';

/** Runs `openssl …`; returns exit status and output (never throws on a non-zero status). */
export function openssl(args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** What a judge does with the certificate alone: its public key, then `openssl dgst -sha256 -verify`. */
export function opensslVerify(
  dir: string,
  certPem: string,
  data: Buffer,
  signature: Buffer,
): { status: number; out: string } {
  fs.writeFileSync(path.join(dir, 'cert.pem'), certPem);
  fs.writeFileSync(path.join(dir, 'data'), data);
  fs.writeFileSync(path.join(dir, 'sig.der'), signature);
  execFileSync('openssl', [
    'x509',
    '-in',
    path.join(dir, 'cert.pem'),
    '-pubkey',
    '-noout',
    '-out',
    path.join(dir, 'pub.pem'),
  ]);
  return openssl([
    'dgst',
    '-sha256',
    '-verify',
    path.join(dir, 'pub.pem'),
    '-signature',
    path.join(dir, 'sig.der'),
    path.join(dir, 'data'),
  ]);
}

/** The `coffre` CLI in this process (same SoftHSM2 configuration as the test's token). */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'coffre', ...args], {
    out: (s) => void (out += s.endsWith('\n') ? s : s + '\n'),
    err: (s) => void (err += s.endsWith('\n') ? s : s + '\n'),
  });
  process.exitCode = undefined;
  return { code, out, err };
}
