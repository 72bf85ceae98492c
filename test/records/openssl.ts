import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Checks an ECDSA signature over `data` with stock openssl and the sealing certificate alone: true on "Verified OK". */
export function opensslVerifies(data: Buffer, signatureB64: string, certPem: string): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-seal-check-'));
  try {
    fs.writeFileSync(path.join(dir, 'proof.json'), data);
    fs.writeFileSync(path.join(dir, 'proof.json.sig'), Buffer.from(signatureB64, 'base64'));
    fs.writeFileSync(path.join(dir, 'seal-cert.pem'), certPem);
    const pub = execFileSync('openssl', ['x509', '-in', path.join(dir, 'seal-cert.pem'), '-pubkey', '-noout']);
    fs.writeFileSync(path.join(dir, 'seal-pub.pem'), pub);
    try {
      const out = execFileSync(
        'openssl',
        [
          'dgst',
          '-sha256',
          '-verify',
          path.join(dir, 'seal-pub.pem'),
          '-signature',
          path.join(dir, 'proof.json.sig'),
          path.join(dir, 'proof.json'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      return out.toString().includes('Verified OK');
    } catch {
      return false;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
