import crypto from 'node:crypto';
import { leadingZeroBits } from './proof-bits.js';

/**
 * The sign-in proof of work (docs/brute-force.md): find a nonce such that SHA-256 of
 * `challenge ":" nonce` (UTF-8) starts with `bits` zero bits. The server checks it with one hash;
 * a client does about 2^bits of them (the console does the same with WebCrypto).
 */
export function proofHolds(challenge: string, nonce: string, bits: number): boolean {
  return leadingZeroBits(crypto.createHash('sha256').update(`${challenge}:${nonce}`, 'utf8').digest(), bits);
}

/** the client's side: the first nonce (decimal counter) that holds */
export function solveProof(challenge: string, bits: number): string {
  for (let n = 0; ; n++) {
    const nonce = n.toString(36);
    if (proofHolds(challenge, nonce, bits)) return nonce;
  }
}
