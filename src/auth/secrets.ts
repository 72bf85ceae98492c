import crypto from 'node:crypto';

/** Random secrets from the CSPRNG and their SHA-256 (what the database keeps, R1/Z3/S*). */
export const randomToken = (bytes = 32): string => crypto.randomBytes(bytes).toString('base64url');
export const sha256 = (s: string): string => crypto.createHash('sha256').update(s, 'utf8').digest('base64url');
export const newId = (): string => crypto.randomUUID();
/** constant-time string equality */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
