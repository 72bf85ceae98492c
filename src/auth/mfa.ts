import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import * as OTPAuth from 'otpauth';
import type { AuthSchema, AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { FieldCipher } from '../keys/types.js';
import type { UserRow } from './users.js';
import { randomToken, safeEqual, sha256 } from './secrets.js';

export interface MfaConfig {
  challengeTtlSeconds: number;
  maxAttempts: number;
  issuer: string;
}

export interface TotpProvisioning {
  secret: string;
  otpauthUrl: string;
  /** the same URL as an SVG QR code */
  qrSvg: string;
}

export type ChallengeCheck =
  | { ok: true; userId: string; purpose: string; request: string | null; method: string; release: string | null }
  | {
      ok: false;
      reason: 'invalid' | 'burned' | 'wrong-code';
      userId?: string;
      /** set when a code was checked (and was wrong) */ attemptsLeft?: number;
    };

const PERIOD = 30;
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/**
 * Second factor (M1–M4): TOTP (RFC 6238, SHA-1, 6 digits, 30 s), one-time codes by e-mail or SMS,
 * recovery codes, and login challenges. A challenge is created by the password step: 128-bit id
 * (only its SHA-256 stored), 5-minute life, attempt counter, consumed flag; a code is only ever
 * checked against one challenge, and a TOTP time step is accepted once per user.
 */
export class SecondFactor {
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly fields: FieldCipher,
    private readonly cfg: MfaConfig,
  ) {}

  private totp(secret: OTPAuth.Secret, label: string): OTPAuth.TOTP {
    return new OTPAuth.TOTP({ issuer: this.cfg.issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret });
  }

  /** new TOTP secret for a user, encrypted for the row; the caller stores `secretEnc` */
  async newTotp(
    user: Pick<UserRow, 'id' | 'username'>,
  ): Promise<{ secretEnc: string; provisioning: TotpProvisioning }> {
    const secret = new OTPAuth.Secret({ size: 20 });
    const t = this.totp(secret, user.username);
    const otpauthUrl = t.toString();
    return {
      secretEnc: await this.fields.encrypt('users', secret.base32, `users.totp:${user.id}`),
      provisioning: {
        secret: secret.base32,
        otpauthUrl,
        qrSvg: await (await import('qrcode')).default.toString(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M' }),
      },
    };
  }

  /** M1: checks a TOTP code (±1 step) and records its step so the same code never works twice */
  async verifyTotp(user: UserRow, code: string, secretEnc: string | null = user.totp_secret_enc): Promise<boolean> {
    if (!secretEnc || !/^\d{6}$/.test(code)) return false;
    const b32 = await this.fields.decrypt(secretEnc, `users.totp:${user.id}`);
    const t = this.totp(OTPAuth.Secret.fromBase32(b32), user.username);
    const now = this.clock.nowMs();
    const delta = t.validate({ token: code, timestamp: now, window: 1 });
    if (delta === null) return false;
    const step = Math.floor(now / 1000 / PERIOD) + delta;
    const r = await this.db
      .updateTable('users')
      .set({ totp_last_step: step })
      .where('id', '=', user.id)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** 10 recovery codes (50 bits each); only their SHA-256 is stored; the old ones are deleted */
  async newRecoveryCodes(trx: Kysely<AuthSchema>, userId: string): Promise<string[]> {
    const codes = Array.from({ length: 10 }, () => {
      const b = crypto.randomBytes(10);
      const s = [...b].map((x) => RECOVERY_ALPHABET[x % RECOVERY_ALPHABET.length]).join('');
      return `${s.slice(0, 5)}-${s.slice(5)}`;
    });
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    const now = this.clock.nowMs();
    await trx
      .insertInto('recovery_codes')
      .values(
        codes.map((c) => ({ code_hash: sha256(`${userId}:${c}`), user_id: userId, created_at: now, used_at: null })),
      )
      .execute();
    return codes;
  }

  /** M3: a recovery code works once */
  async useRecoveryCode(userId: string, code: string): Promise<boolean> {
    const norm = code.trim().toLowerCase();
    if (!/^[a-z0-9]{5}-[a-z0-9]{5}$/.test(norm)) return false;
    const r = await this.db
      .updateTable('recovery_codes')
      .set({ used_at: this.clock.nowMs() })
      .where('code_hash', '=', sha256(`${userId}:${norm}`))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** M2: a challenge for one login attempt; for e-mail/SMS, also the code to deliver */
  async createChallenge(
    trx: Kysely<AuthSchema>,
    userId: string,
    method: string,
    purpose: 'session' | 'token',
    request: unknown,
    throttleRelease: string | null = null,
  ): Promise<{ challenge: string; code?: string; expiresAt: number }> {
    const challenge = randomToken(16);
    const idHash = sha256(challenge);
    const code =
      method === 'email' || method === 'sms' ? String(crypto.randomInt(0, 1_000_000)).padStart(6, '0') : undefined;
    const now = this.clock.nowMs();
    const expiresAt = now + this.cfg.challengeTtlSeconds * 1000;
    await trx
      .insertInto('login_challenges')
      .values({
        id_hash: idHash,
        user_id: userId,
        method,
        code_hash: code ? sha256(`${idHash}:${code}`) : null,
        purpose,
        request: request === undefined ? null : JSON.stringify(request),
        created_at: now,
        expires_at: expiresAt,
        attempts: 0,
        consumed_at: null,
        throttle_release: throttleRelease,
      })
      .execute();
    return { challenge, ...(code ? { code } : {}), expiresAt };
  }

  /**
   * Checks a code against a challenge. Every call uses one attempt (counted atomically before the
   * check); the `maxAttempts`-th wrong code burns the challenge (M3). On success the challenge is
   * consumed (exactly once, even under parallel submissions).
   */
  async answer(
    challenge: string,
    code: string,
    loadUser: (id: string) => Promise<UserRow | undefined>,
  ): Promise<ChallengeCheck> {
    const idHash = sha256(challenge);
    const now = this.clock.nowMs();
    const row = await this.db
      .selectFrom('login_challenges')
      .selectAll()
      .where('id_hash', '=', idHash)
      .executeTakeFirst();
    if (!row || row.consumed_at !== null || Number(row.expires_at) <= now)
      return { ok: false, reason: 'invalid', ...(row ? { userId: row.user_id } : {}) };
    const took = await this.db
      .updateTable('login_challenges')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id_hash', '=', idHash)
      .where('consumed_at', 'is', null)
      .where('attempts', '<', this.cfg.maxAttempts)
      .executeTakeFirst();
    if (Number(took.numUpdatedRows) !== 1) return { ok: false, reason: 'burned', userId: row.user_id };
    const user = await loadUser(row.user_id);
    let good = false;
    if (user && user.state === 'active') {
      const c = code.trim();
      if (row.code_hash && /^\d{6}$/.test(c)) good = safeEqual(sha256(`${idHash}:${c}`), row.code_hash);
      else if (row.method === 'totp' && /^\d{6}$/.test(c)) good = await this.verifyTotp(user, c);
      else if (row.method === 'totp-enrol' && /^\d{6}$/.test(c) && user.totp_pending_enc)
        good = await this.verifyTotp(user, c, user.totp_pending_enc);
      if (!good && /-/.test(c)) good = await this.useRecoveryCode(user.id, c);
    }
    if (!good) {
      const after = await this.db
        .selectFrom('login_challenges')
        .select('attempts')
        .where('id_hash', '=', idHash)
        .executeTakeFirst();
      const left = this.cfg.maxAttempts - (after?.attempts ?? this.cfg.maxAttempts);
      if (left <= 0)
        await this.db
          .updateTable('login_challenges')
          .set({ consumed_at: now })
          .where('id_hash', '=', idHash)
          .where('consumed_at', 'is', null)
          .execute();
      return {
        ok: false,
        reason: left <= 0 ? 'burned' : 'wrong-code',
        userId: row.user_id,
        attemptsLeft: Math.max(0, left),
      };
    }
    const consumed = await this.db
      .updateTable('login_challenges')
      .set({ consumed_at: now })
      .where('id_hash', '=', idHash)
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    if (Number(consumed.numUpdatedRows) !== 1) return { ok: false, reason: 'invalid', userId: row.user_id };
    return {
      ok: true,
      userId: row.user_id,
      purpose: row.purpose,
      request: row.request,
      method: row.method,
      release: row.throttle_release,
    };
  }

  /** the user a live challenge belongs to (to check their second factor is not locked before a code is tried) */
  async challengeUser(challenge: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('login_challenges')
      .select(['user_id', 'consumed_at', 'expires_at'])
      .where('id_hash', '=', sha256(challenge))
      .executeTakeFirst();
    return row && row.consumed_at === null && Number(row.expires_at) > this.clock.nowMs() ? row.user_id : undefined;
  }

  /** housekeeping: old challenges are useless */
  async purge(): Promise<void> {
    await this.db
      .deleteFrom('login_challenges')
      .where('expires_at', '<', this.clock.nowMs() - 86_400_000)
      .execute();
  }
}
