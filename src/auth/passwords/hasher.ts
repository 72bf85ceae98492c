import { hash, verify, parseOptions } from '@node-rs/argon2';
import { Semaphore } from '../../shared/semaphore.js';

export interface Argon2Params {
  memoryKiB: number;
  timeCost: number;
  parallelism: 1;
  maxConcurrent: number;
}

/** @node-rs/argon2's `Algorithm.Argon2id` (a const enum, inlined by hand for isolated builds) */
const ARGON2ID = 2;

/**
 * P5: argon2id with a fresh 16-byte salt per hash; the PHC string keeps the parameters, so they
 * can be raised later: `needsRehash` tells the login to re-hash with the current ones. At most
 * `maxConcurrent` hashes run at once (the rest queue), so a login storm cannot starve the
 * appliance; known clients have a lane of their own (`priority`). `dummyVerify` costs the same as a real verification (unknown users, B3).
 */
export class PasswordHasher {
  private readonly sem: Semaphore;
  private dummy: Promise<string> | undefined;
  constructor(readonly params: Argon2Params) {
    this.sem = new Semaphore(params.maxConcurrent);
  }

  private opts() {
    return { algorithm: ARGON2ID, memoryCost: this.params.memoryKiB, timeCost: this.params.timeCost, parallelism: this.params.parallelism, outputLen: 32 };
  }

  hash(password: string): Promise<string> {
    return this.sem.run(() => hash(password, this.opts() as never));
  }

  /** `priority`: a sign-in from a device or address the user is known for goes before other hashes waiting */
  async verify(phc: string, password: string, priority = false): Promise<boolean> {
    return this.sem.run(async () => {
      try {
        return await verify(phc, password);
      } catch {
        return false;
      }
    }, priority);
  }

  /** burns the time of one verification (same parameters) and returns false */
  async dummyVerify(password: string): Promise<false> {
    this.dummy ??= hash('coffre-dummy-password', this.opts() as never);
    await this.verify(await this.dummy, password);
    return false;
  }

  needsRehash(phc: string): boolean {
    try {
      const o = parseOptions(phc);
      return o.algorithm !== ARGON2ID || o.memoryCost < this.params.memoryKiB || o.timeCost < this.params.timeCost || o.parallelism !== this.params.parallelism;
    } catch {
      return true;
    }
  }

  get queued(): number {
    return this.sem.pending;
  }
}
