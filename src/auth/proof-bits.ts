/**
 * The one check of the sign-in proof of work, shared by the appliance (src/auth/proof.ts) and the
 * console (src/console/app/proof.ts): does a SHA-256 digest start with `bits` zero bits?
 * No imports, so the console bundles it as is.
 */
export function leadingZeroBits(h: Uint8Array, bits: number): boolean {
  let left = bits;
  for (const byte of h) {
    if (left <= 0) return true;
    if (left >= 8) {
      if (byte !== 0) return false;
      left -= 8;
    } else return byte >> (8 - left) === 0;
  }
  return left <= 0;
}
