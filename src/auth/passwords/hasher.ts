import { hash, verify, parseOptions } from '@node-rs/argon2';
import { Semaphore } from '../../shared/semaphore.js';

export interface Argon2Params {
  memoryKiB: number;
  timeCost: number;
  parallelism: 1;
  maxConcurrent: number;
  /** slots kept for priority (known-client) verifications, capped at maxConcurrent - 1 */
  knownClientSlots?: number;
}

/**
 * HMAC-SHA256 of the password under a non-extractable HSM key (one call to the HSM worker,
 * under its per-call deadline). Fails with KEYS_UNAVAILABLE when the HSM cannot answer: there is
 * no software fallback.
 */
export type Pepper = (password: string) => Promise<Buffer>;

/** @node-rs/argon2's `Algorithm.Argon2id` (a const enum, inlined by hand for isolated builds) */
const ARGON2ID = 2;
/** the stored form of a peppered hash (docs/formats.md "Password hashes"): this prefix, then argon2id's PHC string */
export const PEPPERED_PREFIX = '$coffre-pepper$v=1';

/**
 * P5: argon2id with a fresh 16-byte salt per hash, over base64(HMAC-SHA256(HSM key, password))
 * (the pepper): a hash copied out of the database is useless without the HSM. The stored string is
 * versioned: `$coffre-pepper$v=1` followed by the PHC string (which keeps the parameters, so they
 * can be raised later). A bare PHC string is a hash from before the pepper: it still verifies,
 * and `needsRehash` tells the login to re-hash it (peppered) at its owner's next sign-in. Every
 * verification asks the HSM first, legacy or not: with the HSM down, no password is checked
 * (KEYS_UNAVAILABLE), never without the pepper.
 *
 * At most `maxConcurrent` hashes run at once (the rest queue), so a login storm cannot starve the
 * appliance; known clients have a lane of their own (`priority`) and `knownClientSlots` slots of
 * their own (1 by default; all other hashes share the rest, at least one). `dummyVerify` costs the same as a
 * real verification, HSM call included (unknown users, B3).
 */
export class PasswordHasher {
  private readonly sem: Semaphore;
  private dummy: Promise<string> | undefined;
  constructor(
    readonly params: Argon2Params,
    private readonly pepper: Pepper,
  ) {
    // slots kept for known clients: their sign-in never waits for a guesser's hash to finish,
    // however many are queued
    this.sem = new Semaphore(params.maxConcurrent, Math.min(params.knownClientSlots ?? 1, params.maxConcurrent - 1));
  }

  private opts() {
    return {
      algorithm: ARGON2ID,
      memoryCost: this.params.memoryKiB,
      timeCost: this.params.timeCost,
      parallelism: this.params.parallelism,
      outputLen: 32,
    };
  }

  async hash(password: string): Promise<string> {
    const peppered = (await this.pepper(password)).toString('base64');
    return PEPPERED_PREFIX + (await this.sem.run(() => hash(peppered, this.opts() as never)));
  }

  /** `priority`: a sign-in from a device or address the user is known for goes before other hashes waiting */
  async verify(stored: string, password: string, priority = false): Promise<boolean> {
    // base64: @node-rs/argon2's verify refuses bytes that are not UTF-8
    const peppered = (await this.pepper(password)).toString('base64');
    const legacy = !stored.startsWith(PEPPERED_PREFIX);
    const phc = legacy ? stored : stored.slice(PEPPERED_PREFIX.length);
    return this.sem.run(async () => {
      try {
        return await verify(phc, legacy ? password : peppered);
      } catch {
        return false;
      }
    }, priority);
  }

  /** burns the time of one verification (same parameters, the HSM call included) and returns false */
  async dummyVerify(password: string): Promise<false> {
    this.dummy ??= hash('coffre-dummy-password', this.opts() as never).then((h) => PEPPERED_PREFIX + h);
    await this.verify(await this.dummy, password);
    return false;
  }

  /** a hash from before the pepper, or with parameters below the current ones */
  needsRehash(stored: string): boolean {
    if (!stored.startsWith(PEPPERED_PREFIX)) return true;
    try {
      const o = parseOptions(stored.slice(PEPPERED_PREFIX.length));
      return (
        o.algorithm !== ARGON2ID ||
        o.memoryCost < this.params.memoryKiB ||
        o.timeCost < this.params.timeCost ||
        o.parallelism !== this.params.parallelism
      );
    } catch {
      return true;
    }
  }

  get queued(): number {
    return this.sem.pending;
  }
}
