import { leadingZeroBits } from '../../auth/proof-bits.js';

/**
 * The sign-in proof of work (the appliance's docs/brute-force.md): find a nonce such that
 * SHA-256(challenge ":" nonce) starts with `bits` zero bits. WebCrypto digests run in batches so
 * a 20-bit proof takes seconds, not minutes.
 */
export async function solveProof(challenge: string, bits: number): Promise<string> {
  const enc = new TextEncoder();
  const BATCH = 512;
  for (let base = 0; ; base += BATCH) {
    const nonces = Array.from({ length: BATCH }, (_, i) => (base + i).toString(36));
    const digests = await Promise.all(
      nonces.map((n) => crypto.subtle.digest('SHA-256', enc.encode(`${challenge}:${n}`))),
    );
    const i = digests.findIndex((d) => leadingZeroBits(new Uint8Array(d), bits));
    if (i >= 0) return nonces[i]!;
  }
}
