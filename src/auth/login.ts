import { setTimeout as delay } from 'node:timers/promises';
import type { AuthDeps, Source } from './deps.js';
import type { UserDirectory, UserRow } from './users.js';
import type { PasswordHasher } from './passwords/hasher.js';
import type { Counts, Known, LoginThrottle, Reservation } from './throttle.js';
import type { SessionStore } from './sessions.js';
import type { SecondFactor, TotpProvisioning } from './mfa.js';
import { ApiTokens, type TokenView } from './tokens.js';
import type { MailSender, SmsSender } from './messaging.js';
import { LoginThrottle as Throttle } from './throttle.js';
import type { ProofChallenges } from './proof-challenges.js';
import type { RefusalTally } from './refusals.js';
import { addressPrefix } from './address.js';
import { normaliseUsername } from './username.js';
import { authErrors } from './errors.js';
import { isAppError } from '../shared/errors.js';
import { notices } from './notices.js';
import { newId, randomToken } from './secrets.js';
import { OPT_IN_SCOPES, ROLE_PERMISSIONS, isApplianceRole } from '../access/index.js';
import { MAX_PASSWORD_LENGTH, codePoints } from './passwords/policy.js';

export interface TokenRequest {
  name: string;
  scopes?: string[] | undefined;
  ttlDays?: number | undefined;
}

export type LoginResult =
  | {
      status: 'mfa_required';
      challenge: string;
      method: string;
      expiresAt: number;
      /** method `totp-enrol`: the authenticator to add */ totp?: TotpProvisioning;
    }
  | {
      status: 'ok';
      userId: string;
      session?: { id: string; secret: string; csrfToken: string; expiresAt: number };
      token?: { token: string; view: TokenView };
      /** the device cookie's value (browser sign-ins) */
      device?: string;
      /** notices waiting since the last sign-in (e.g. `mfa.locked`) */
      notices?: { kind: string; at: number }[];
    };

/** the challenge of a sign-in that adds its first authenticator (no mail server for codes) */
const ENROL_METHOD = 'totp-enrol';

/** the device cookie's value: 24 random bytes, base64url */
const DEVICE_SECRET = /^[A-Za-z0-9_-]{32}$/;

export interface LoginParts {
  users: UserDirectory;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  sessions: SessionStore;
  mfa: SecondFactor;
  tokens: ApiTokens;
  proofs: ProofChallenges;
  refusals: RefusalTally;
  mail?: MailSender | undefined;
  sms?: SmsSender | undefined;
}

/**
 * Sign-in (B1–B4, M1–M4, S2): password step, then the second factor bound to a challenge, then a
 * new session (cookie) or an API token. Unknown user, wrong password and disabled account all
 * answer the same INVALID_CREDENTIALS after the same work (one argon2 verification). Throttling
 * never refuses the right password: it asks for a proof of work first (`LoginThrottle`), decided
 * from counters that do not depend on whether the account exists. Second-factor failures are
 * counted per user across challenges and lock the factor for a while (M5).
 */
export class LoginService {
  constructor(
    private readonly d: AuthDeps,
    private readonly p: LoginParts,
  ) {}

  /** M4: the user's second factor, or the fallback when their role requires one */
  mfaMethodOf(u: UserRow): string | null {
    if (u.mfa_method) return u.mfa_method;
    return this.d.config.mfa.requiredRoles.includes(u.role) ? 'email' : null;
  }

  private alert(
    kind: string,
    severity: 'info' | 'warning' | 'critical',
    message: string,
    targets: Record<string, string>,
  ): Promise<void> {
    return this.d.alerts
      .raise({ kind, severity, message, targets })
      .catch((e: unknown) => this.d.log.error({ err: e }, 'alert failed'));
  }

  /** `auth.bruteforce` when an account or an address crosses a threshold (the alerter folds repeats) */
  private async alertOnCounts(c: Counts, prefix: string, account: Record<string, string>): Promise<void> {
    const t = this.d.config.throttle;
    if (c.accountFailures === t.alertAfter)
      await this.alert(
        'auth.bruteforce',
        'warning',
        `${c.accountFailures} failed sign-ins for one account within an hour`,
        account,
      );
    if (c.accountFailures === t.accountFailuresPerHour) {
      await this.alert(
        'auth.bruteforce',
        'critical',
        `one account is under attack (${c.accountFailures} failed sign-ins within an hour): sign-ins from addresses and devices it does not know now need a proof of work`,
        { ...account, stage: 'friction' },
      );
    }
    if (c.addressFailures === t.addressFailures)
      await this.alert(
        'auth.bruteforce',
        'warning',
        `${c.addressFailures} failed sign-ins from ${prefix}: it now needs a proof of work for accounts it is not known for`,
        { address: prefix },
      );
  }

  async passwordStep(
    o: {
      username: string;
      password: string;
      purpose: 'session' | 'token';
      token?: TokenRequest | undefined;
      proof?: { challenge: string; nonce: string } | undefined;
      device?: string | undefined;
    },
    source: Source,
  ): Promise<LoginResult> {
    const prefix = addressPrefix(source.ip);
    let key: string;
    try {
      key = normaliseUsername(o.username).key;
    } catch {
      key = o.username.normalize('NFKC').toLowerCase().slice(0, 200);
    }
    const accountKey = Throttle.accountKey(key);
    // a guesser who sends again without solving the last demand: answered from memory (docs/brute-force.md)
    const again = o.device || o.proof ? undefined : this.p.throttle.recentDemand(accountKey, prefix);
    if (again) {
      // held before the answer: a guesser who waits for it sends a few a second, not hundreds
      await delay(this.d.config.throttle.refusalDelayMs);
      const challenge = await this.p.proofs.issue(accountKey, prefix, again.bits);
      this.p.refusals.refused(prefix, again.bits, again.userId, source);
      throw authErrors.proofRequired(challenge);
    }
    const user = await this.p.users.byUsername(o.username);
    const targets: Record<string, string> = user ? { user: user.id } : {};
    const known = user ? await this.p.throttle.known(user.id, prefix, o.device) : null;
    const proven = await this.p.proofs.redeem(o.proof, accountKey, prefix);
    const r = await this.p.throttle.reserve(accountKey, prefix, known, proven);
    if (!r.ok) {
      // B3: friction, never a refusal: the same demand whether the account exists or not. Nothing
      // is written for it: the refusal is recorded in aggregate (per address and minute)
      const challenge = await this.p.proofs.issue(accountKey, prefix, r.bits);
      this.p.refusals.refused(prefix, r.bits, user?.id, source);
      if (!o.device) this.p.throttle.noteDemand(accountKey, prefix, r.bits, user?.id);
      throw authErrors.proofRequired(challenge);
    }
    await this.alertOnCounts(r, prefix, user ? { user: user.id } : { account: accountKey.slice(0, 48) });
    const seen = { wrong: false };
    try {
      return await this.evaluate(o, user, known, r, { accountKey, prefix, targets, seen }, source);
    } catch (e) {
      // a server fault (HSM down, database error…) is no guess: the attempt is given back, unless a
      // wrong password had already been found (the fault came after it was counted as one)
      if (!seen.wrong && (!isAppError(e) || e.httpStatus >= 500))
        await r.cancel().catch((err: unknown) => this.d.log.error({ err }, 'could not give back a sign-in attempt'));
      throw e;
    }
  }

  /** the password step once its attempt is counted: the password, then the second factor or the sign-in */
  private async evaluate(
    o: Parameters<LoginService['passwordStep']>[0],
    user: UserRow | undefined,
    known: Known,
    r: Extract<Reservation, { ok: true }>,
    c: { accountKey: string; prefix: string; targets: Record<string, string>; seen: { wrong: boolean } },
    source: Source,
  ): Promise<LoginResult> {
    const { accountKey, prefix, targets } = c;
    // P2: no silent truncation — an over-long password is simply wrong (and costs the same)
    const tooLong = codePoints(o.password) > MAX_PASSWORD_LENGTH;
    let good = false;
    if (!user || user.state !== 'active' || !user.password_hash || tooLong)
      await this.p.hasher.dummyVerify(o.password.slice(0, 256));
    else good = await this.p.hasher.verify(user.password_hash, o.password, known !== null);
    if (!good || !user) {
      c.seen.wrong = true;
      // a known client's attempt counts for the account and the address only now
      const after = await r.failed();
      if (after)
        await this.alertOnCounts(after, prefix, user ? { user: user.id } : { account: accountKey.slice(0, 48) });
      const reason = !user
        ? 'UNKNOWN_USER'
        : user.state !== 'active'
          ? `USER_${user.state.toUpperCase()}`
          : 'BAD_PASSWORD';
      await this.d.audit.recordNow({
        action: 'auth.login',
        actor: 'anonymous',
        outcome: 'failure',
        reason,
        targets,
        source,
      });
      throw authErrors.invalidCredentials();
    }
    if (user.password_hash && this.p.hasher.needsRehash(user.password_hash)) {
      const upgraded = await this.p.hasher.hash(o.password);
      await this.d.db
        .updateTable('users')
        .set({ password_hash: upgraded })
        .where('id', '=', user.id)
        .where('password_hash', '=', user.password_hash)
        .execute();
    }
    const method = this.mfaMethodOf(user);
    if (!method) {
      await r.release();
      return this.issue(user, o.purpose, o.token, source, 'password', o.device);
    }
    // M5: the reservation stays counted until the second factor succeeds
    const locked = await this.mfaLockedFor(user.id);
    if (locked) {
      await this.d.audit.recordNow({
        action: 'auth.login.password',
        actor: `user:${user.id}`,
        outcome: 'denied',
        reason: 'MFA_LOCKED',
        targets: { user: user.id },
        source,
      });
      throw authErrors.mfaLocked(locked);
    }
    if (method === 'email' && !this.p.mail && !user.mfa_method)
      return this.enrolStep(user, o.purpose, o.token, JSON.stringify({ accountKey, prefix, light: r.light }), source);
    if (method === 'sms' && (!this.p.sms || !user.phone_enc))
      throw authErrors.mfaUnavailable('no SMS gateway or phone number');
    if (method === 'email' && !this.p.mail) throw authErrors.mfaUnavailable('no mail server configured');
    if (method === 'sms' || method === 'email') await this.takeCodeBudget(user, method, source);
    const release = JSON.stringify({ accountKey, prefix, light: r.light });
    const ch = await this.d.db.transaction().execute(async (trx) => {
      const c = await this.p.mfa.createChallenge(trx, user.id, method, o.purpose, o.token, release);
      await this.d.audit.record(trx, {
        action: 'auth.login.password',
        actor: `user:${user.id}`,
        outcome: 'success',
        reason: 'MFA_REQUIRED',
        targets: { user: user.id },
        source,
      });
      return c;
    });
    if (ch.code) await this.deliverCode(user, method, ch.code);
    return { status: 'mfa_required', challenge: ch.challenge, method, expiresAt: ch.expiresAt };
  }

  /**
   * A role that requires a second factor, a user who has none, and no mail server to send a code
   * (an upgraded install): right after the password, the user adds an authenticator (TOTP) bound to
   * this one challenge (same life, attempts and lock as any challenge), and the sign-in completes
   * only with a code from it. The password alone grants nothing else: no session, no token.
   */
  private async enrolStep(
    user: UserRow,
    purpose: 'session' | 'token',
    token: TokenRequest | undefined,
    release: string,
    source: Source,
  ): Promise<LoginResult> {
    const locked = await this.mfaLockedFor(user.id);
    if (locked) {
      await this.d.audit.recordNow({
        action: 'auth.login.password',
        actor: `user:${user.id}`,
        outcome: 'denied',
        reason: 'MFA_LOCKED',
        targets: { user: user.id },
        source,
      });
      throw authErrors.mfaLocked(locked);
    }
    const t = await this.p.mfa.newTotp(user);
    const ch = await this.d.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ totp_pending_enc: t.secretEnc })
        .where('id', '=', user.id)
        .where('mfa_method', 'is', null)
        .execute();
      const c = await this.p.mfa.createChallenge(trx, user.id, ENROL_METHOD, purpose, token, release);
      await this.d.audit.record(trx, {
        action: 'auth.login.password',
        actor: `user:${user.id}`,
        outcome: 'success',
        reason: 'MFA_ENROL_REQUIRED',
        targets: { user: user.id },
        source,
      });
      return c;
    });
    return {
      status: 'mfa_required',
      challenge: ch.challenge,
      method: ENROL_METHOD,
      expiresAt: ch.expiresAt,
      totp: t.provisioning,
    };
  }

  private static readonly WINDOW_15_MIN = 15 * 60_000;

  /** M5: e-mail and SMS codes per user and per destination (no SMS pumping) */
  private async takeCodeBudget(user: UserRow, method: 'sms' | 'email', source: Source): Promise<void> {
    const max = this.d.config.mfa.codesPer15Min;
    const w = LoginService.WINDOW_15_MIN;
    const userKey = `mfacode:${user.id}`;
    const dest = method === 'sms' ? user.phone_index : user.email_index;
    const destKey = `mfadest:${method}:${dest ?? user.id}`;
    if (await this.p.throttle.take(userKey, max, w)) {
      if (await this.p.throttle.take(destKey, max, w)) return;
      await this.p.throttle.untake(userKey);
    }
    const retry = Math.max(
      await this.p.throttle.windowLeftSeconds(userKey, w),
      await this.p.throttle.windowLeftSeconds(destKey, w),
    );
    await this.d.audit.recordNow({
      action: 'auth.login.code',
      actor: `user:${user.id}`,
      outcome: 'denied',
      reason: 'CODE_RATE_LIMITED',
      targets: { user: user.id, method },
      source,
    });
    await this.alert(
      'auth.mfa.codes',
      'warning',
      `the ${method === 'sms' ? 'SMS' : 'e-mail'} code budget of one account or destination is used up`,
      { user: user.id },
    );
    throw authErrors.codeRateLimited(retry);
  }

  /** seconds left while the user's second factor is locked (M5), else 0 */
  private mfaLockedFor(userId: string): Promise<number> {
    return this.p.throttle.activeFor(`mfalock:${userId}`, this.d.config.mfa.lockMinutes * 60_000);
  }

  /** M5: one wrong code; the `userFailuresPer15Min`-th locks the factor, tells the user and raises an alert */
  private async countMfaFailure(user: UserRow, source: Source): Promise<void> {
    const n = await this.p.throttle.hit(`mfafail:${user.id}`, LoginService.WINDOW_15_MIN);
    if (n !== this.d.config.mfa.userFailuresPer15Min) return;
    const minutes = this.d.config.mfa.lockMinutes;
    await this.p.throttle.hit(`mfalock:${user.id}`, minutes * 60_000);
    await this.p.throttle.clear(`mfafail:${user.id}`);
    await this.d.audit.recordNow({
      action: 'auth.mfa.lock',
      actor: 'system',
      outcome: 'success',
      reason: 'TOO_MANY_WRONG_CODES',
      targets: { user: user.id, minutes: String(minutes) },
      source,
    });
    await this.d.db
      .insertInto('auth_user_notices')
      .values({ id: newId(), user_id: user.id, kind: 'mfa.locked', created_at: this.d.clock.nowMs(), shown_at: null })
      .execute();
    await this.alert(
      'auth.mfa.locked',
      'critical',
      `${n} wrong second-factor codes for one account within 15 minutes: its second factor is locked for ${minutes} minutes (someone may hold its password)`,
      { user: user.id },
    );
    if (this.p.mail) {
      const m = notices.mfaLocked(user, user.username, minutes, this.d.clock.nowMs());
      await this.p.mail
        .send({ to: await this.p.users.email(user), subject: m.subject, text: m.text })
        .catch((e: unknown) =>
          this.d.log.warn({ err: e, event: 'auth.notify_failed' }, 'could not send the second-factor lock notice'),
        );
    }
  }

  private async deliverCode(user: UserRow, method: string, code: string): Promise<void> {
    const n = notices.code(user, code, Math.round(this.d.config.mfa.challengeTtlSeconds / 60));
    if (method === 'sms') {
      const phone = await this.p.users.phone(user);
      await this.p.sms!.send({ to: phone!, text: n.text });
    } else {
      await this.p.mail!.send({ to: await this.p.users.email(user), subject: n.subject, text: n.text });
    }
  }

  async mfaStep(
    o: { challenge: string; code: string; device?: string | undefined },
    source: Source,
  ): Promise<LoginResult> {
    const owner = await this.p.mfa.challengeUser(o.challenge);
    const locked = owner ? await this.mfaLockedFor(owner) : 0;
    if (owner && locked) {
      await this.d.audit.recordNow({
        action: 'auth.login.mfa',
        actor: `user:${owner}`,
        outcome: 'denied',
        reason: 'MFA_LOCKED',
        targets: { user: owner },
        source,
      });
      throw authErrors.mfaLocked(locked);
    }
    const res = await this.p.mfa.answer(o.challenge, o.code, (id) => this.p.users.byId(id));
    if (!res.ok) {
      const targets: Record<string, string> = res.userId ? { user: res.userId } : {};
      await this.d.audit.recordNow({
        action: 'auth.login.mfa',
        actor: res.userId ? `user:${res.userId}` : 'anonymous',
        outcome: 'failure',
        reason:
          res.reason === 'wrong-code' ? 'BAD_CODE' : res.reason === 'burned' ? 'CHALLENGE_BURNED' : 'CHALLENGE_INVALID',
        targets,
        source,
      });
      const u = res.userId && res.attemptsLeft !== undefined ? await this.p.users.byId(res.userId) : undefined;
      if (u) await this.countMfaFailure(u, source);
      throw res.reason === 'wrong-code' ? authErrors.invalidCode() : authErrors.challengeInvalid();
    }
    const user = await this.p.users.byId(res.userId);
    if (!user || user.state !== 'active') throw authErrors.challengeInvalid();
    if (res.method === 'totp' && user.totp_confirmed === 0) {
      await this.d.db.updateTable('users').set({ totp_confirmed: 1 }).where('id', '=', user.id).execute();
    }
    if (res.method === ENROL_METHOD) {
      // the code came from the authenticator added at this sign-in: it is now the user's factor
      await this.d.db.transaction().execute(async (trx) => {
        const done = await trx
          .updateTable('users')
          .set({
            mfa_method: 'totp',
            totp_secret_enc: user.totp_pending_enc,
            totp_pending_enc: null,
            totp_confirmed: 1,
          })
          .where('id', '=', user.id)
          .where('mfa_method', 'is', null)
          .where('totp_pending_enc', '=', user.totp_pending_enc)
          .executeTakeFirst();
        if (Number(done.numUpdatedRows) !== 1) throw authErrors.challengeInvalid();
        await this.d.audit.record(trx, {
          action: 'auth.mfa.totp.enrol',
          actor: `user:${user.id}`,
          outcome: 'success',
          reason: 'AT_SIGN_IN',
          targets: { user: user.id },
          source,
        });
      });
    }
    if (res.release) {
      const rel = JSON.parse(res.release) as { accountKey: string; prefix: string; light?: boolean };
      await this.p.throttle.release(rel.accountKey, rel.prefix, rel.light === true);
    }
    const token = res.request ? (JSON.parse(res.request) as TokenRequest) : undefined;
    return this.issue(
      user,
      res.purpose === 'token' ? 'token' : 'session',
      token,
      source,
      res.method === ENROL_METHOD ? 'totp' : res.method,
      o.device,
    );
  }

  /** S2: a brand-new session (or token) at every sign-in; the address (and the browser, by its device cookie) becomes known for the user */
  private async issue(
    user: UserRow,
    purpose: 'session' | 'token',
    tokenReq: TokenRequest | undefined,
    source: Source,
    factor: string,
    device: string | undefined,
  ): Promise<LoginResult> {
    let scopes: string[] = [];
    if (purpose === 'token') {
      // Z5: scopes above the role are refused exactly as POST /auth/tokens refuses them
      try {
        scopes = ApiTokens.grant(
          isApplianceRole(user.role) ? ROLE_PERMISSIONS[user.role] : [],
          tokenReq?.scopes,
          OPT_IN_SCOPES,
        );
      } catch (e) {
        await this.d.audit.recordNow({
          action: 'auth.login',
          actor: `user:${user.id}`,
          outcome: 'denied',
          reason: 'SCOPE_ABOVE_ROLE',
          targets: { user: user.id },
          source,
        });
        throw e;
      }
    }
    const out = await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.nowMs();
      await trx.updateTable('users').set({ last_login_at: now, last_seen_at: now }).where('id', '=', user.id).execute();
      if (purpose === 'token') {
        const t = await this.p.tokens.create(trx, user.id, {
          name: tokenReq?.name ?? 'coffre login',
          scopes,
          ttlDays: tokenReq?.ttlDays,
        });
        await this.d.audit.record(trx, {
          action: 'auth.login',
          actor: `user:${user.id}`,
          outcome: 'success',
          reason: `TOKEN_${factor.toUpperCase()}`,
          targets: { user: user.id, token: t.view.id },
          source,
        });
        return { status: 'ok' as const, userId: user.id, token: t };
      }
      const s = await this.p.sessions.create(trx, user.id, { ip: source.ip, userAgent: source.userAgent });
      await this.d.audit.record(trx, {
        action: 'auth.login',
        actor: `user:${user.id}`,
        outcome: 'success',
        reason: `SESSION_${factor.toUpperCase()}`,
        targets: { user: user.id, session: s.id },
        source,
      });
      return { status: 'ok' as const, userId: user.id, session: s };
    });
    const dev = purpose === 'session' ? (device && DEVICE_SECRET.test(device) ? device : randomToken(24)) : undefined;
    await this.p.throttle.remember(user.id, addressPrefix(source.ip), dev);
    return { ...out, ...(dev ? { device: dev } : {}), notices: await this.takeNotices(user.id) };
  }

  /** notices waiting for the user (shown once, at this sign-in) */
  private async takeNotices(userId: string): Promise<{ kind: string; at: number }[]> {
    const rows = await this.d.db
      .selectFrom('auth_user_notices')
      .selectAll()
      .where('user_id', '=', userId)
      .where('shown_at', 'is', null)
      .orderBy('created_at')
      .execute();
    if (rows.length)
      await this.d.db
        .updateTable('auth_user_notices')
        .set({ shown_at: this.d.clock.nowMs() })
        .where(
          'id',
          'in',
          rows.map((r) => r.id),
        )
        .execute();
    return rows.map((r) => ({ kind: r.kind, at: Number(r.created_at) }));
  }
}
