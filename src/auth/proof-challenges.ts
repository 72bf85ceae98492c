import crypto from 'node:crypto';
import type { AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { proofHolds } from './proof.js';
import { randomToken, sha256 } from './secrets.js';

export interface ProofChallenge {
  challenge: string;
  bits: number;
  expiresAt: number;
}

const PROOF_TTL_MS = 120_000;
/** the tag keeps 16 bytes of the HMAC (128 bits): forging one is out of reach */
const TAG_BYTES = 16;
const SHAPE = /^(\d{1,2})\.(\d{13})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})$/;

/**
 * Proof-of-work challenges that cost no database write to hand out (docs/brute-force.md): a
 * guesser who never solves them costs the appliance reads only. A challenge is
 * `bits "." expiresAt "." random "." tag` with tag = HMAC-SHA256(key, bits.expiresAt.random | account | address),
 * so it is bound to the account and address it was given to and its bits cannot be lowered. The key
 * is derived once per process from an HSM HMAC key (`keyOf`), so every node of a cluster makes and
 * checks the same tags and the key is nowhere in the database. Single use: a redeemed challenge is
 * written to `auth_proofs` (only once its proof holds: an unsolved or forged one costs no write).
 */
export class ProofChallenges {
  private key: Promise<Buffer> | undefined;
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly keyOf: () => Promise<Buffer>,
  ) {}

  private async tag(body: string, accountKey: string, prefix: string): Promise<Buffer> {
    this.key ??= this.keyOf().catch((e: unknown) => {
      this.key = undefined; // the HSM may come back: ask again next time
      throw e;
    });
    return crypto
      .createHmac('sha256', await this.key)
      .update(`${body}|${accountKey}|${prefix}`)
      .digest()
      .subarray(0, TAG_BYTES);
  }

  /** a new single-use challenge for this account and address (expires after two minutes) */
  async issue(accountKey: string, prefix: string, bits: number): Promise<ProofChallenge> {
    const expiresAt = this.clock.nowMs() + PROOF_TTL_MS;
    const body = `${bits}.${expiresAt}.${randomToken(12)}`;
    return {
      challenge: `${body}.${(await this.tag(body, accountKey, prefix)).toString('base64url')}`,
      bits,
      expiresAt,
    };
  }

  /** the bits a solved challenge proves (0 when absent, expired, used, for another account or address, forged or unsolved) */
  async redeem(
    proof: { challenge: string; nonce: string } | undefined,
    accountKey: string,
    prefix: string,
  ): Promise<number> {
    if (!proof || proof.nonce.length > 64) return 0;
    const m = SHAPE.exec(proof.challenge);
    if (!m) return 0;
    const bits = Number(m[1]);
    const expiresAt = Number(m[2]);
    const now = this.clock.nowMs();
    if (expiresAt <= now || expiresAt > now + PROOF_TTL_MS) return 0;
    const want = await this.tag(`${m[1]}.${m[2]}.${m[3]}`, accountKey, prefix);
    const got = Buffer.from(m[4]!, 'base64url');
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return 0;
    if (!proofHolds(proof.challenge, proof.nonce, bits)) return 0;
    // used up: the first redemption wins (several nodes share the table)
    await this.db.deleteFrom('auth_proofs').where('expires_at', '<', now).execute();
    const r = await this.db
      .insertInto('auth_proofs')
      .values({ id_hash: sha256(proof.challenge), account_key: accountKey, prefix, bits, expires_at: expiresAt })
      .onConflict((oc) => oc.column('id_hash').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? bits : 0;
  }
}
