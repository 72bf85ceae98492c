import type { AuthDeps, Source } from './deps.js';
import type { UserDirectory, UserRow } from './users.js';
import type { PasswordHasher } from './passwords/hasher.js';
import type { LoginThrottle } from './throttle.js';
import type { SessionStore } from './sessions.js';
import type { SecondFactor } from './mfa.js';
import type { ApiTokens, TokenView } from './tokens.js';
import type { MailSender, SmsSender } from './messaging.js';
import { LoginThrottle as Throttle } from './throttle.js';
import { addressPrefix } from './address.js';
import { normaliseUsername } from './username.js';
import { authErrors } from './errors.js';
import { notices } from './notices.js';
import { ROLE_PERMISSIONS, isApplianceRole } from '../access/permissions.js';
import { MAX_PASSWORD_LENGTH, codePoints } from './passwords/policy.js';

export interface TokenRequest {
  name: string;
  scopes?: string[] | undefined;
  ttlDays?: number | undefined;
}

export type LoginResult =
  | { status: 'mfa_required'; challenge: string; method: string; expiresAt: number }
  | { status: 'ok'; userId: string; session?: { id: string; secret: string; csrfToken: string; expiresAt: number }; token?: { token: string; view: TokenView } };

export interface LoginParts {
  users: UserDirectory;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  sessions: SessionStore;
  mfa: SecondFactor;
  tokens: ApiTokens;
  mail?: MailSender | undefined;
  sms?: SmsSender | undefined;
}

/**
 * Sign-in (B1–B4, M1–M4, S2): password step, then the second factor bound to a challenge, then a
 * new session (cookie) or an API token. Unknown user, wrong password, disabled and throttled
 * account all answer the same INVALID_CREDENTIALS after the same work (one argon2 verification).
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

  private async fail(source: Source, reason: string, targets: Record<string, string>, alertIf?: { n: number; what: string }): Promise<never> {
    await this.d.audit.recordNow({ action: 'auth.login', actor: 'anonymous', outcome: 'failure', reason, targets, source });
    if (alertIf && alertIf.n === this.d.config.throttle.alertAfter) {
      await this.d.alerts
        .raise({ kind: 'auth.bruteforce', severity: 'warning', message: `${alertIf.n} failed sign-ins for ${alertIf.what}`, targets })
        .catch((e: unknown) => this.d.log.error({ err: e }, 'alert failed'));
    }
    throw authErrors.invalidCredentials();
  }

  async passwordStep(o: { username: string; password: string; purpose: 'session' | 'token'; token?: TokenRequest | undefined }, source: Source): Promise<LoginResult> {
    const prefix = addressPrefix(source.ip);
    let key: string;
    try {
      key = normaliseUsername(o.username).key;
    } catch {
      key = o.username.normalize('NFKC').toLowerCase().slice(0, 200);
    }
    const accountKey = Throttle.accountKey(key);
    const r = await this.p.throttle.reserve(accountKey, prefix);
    if (!r.ok && r.kind === 'address') {
      await this.d.audit.recordNow({ action: 'auth.login', actor: 'anonymous', outcome: 'denied', reason: 'THROTTLED_ADDRESS', targets: { address: prefix }, source });
      if (r.addressFailures === this.d.config.throttle.addressFailures) {
        await this.d.alerts.raise({ kind: 'auth.bruteforce', severity: 'warning', message: `sign-in failures from ${prefix} reached the limit`, targets: { address: prefix } }).catch(() => undefined);
      }
      throw authErrors.rateLimited(r.retryAfterSeconds);
    }
    const user = await this.p.users.byUsername(o.username);
    const targets: Record<string, string> = user ? { user: user.id } : {};
    // P2: no silent truncation — an over-long password is simply wrong (and costs the same)
    const tooLong = codePoints(o.password) > MAX_PASSWORD_LENGTH;
    if (!r.ok) {
      await this.p.hasher.dummyVerify(o.password.slice(0, 256));
      return this.fail(source, 'THROTTLED', targets, { n: r.accountFailures, what: 'one account' });
    }
    let good = false;
    if (!user || user.state !== 'active' || !user.password_hash || tooLong) await this.p.hasher.dummyVerify(o.password.slice(0, 256));
    else good = await this.p.hasher.verify(user.password_hash, o.password);
    await r.settle(good);
    if (!good || !user) {
      const reason = !user ? 'UNKNOWN_USER' : user.state !== 'active' ? `USER_${user.state.toUpperCase()}` : 'BAD_PASSWORD';
      const n = Math.max(r.accountFailures, r.addressFailures);
      return this.fail(source, reason, targets, { n, what: r.accountFailures >= r.addressFailures ? 'one account' : `address ${prefix}` });
    }
    if (user.password_hash && this.p.hasher.needsRehash(user.password_hash)) {
      const upgraded = await this.p.hasher.hash(o.password);
      await this.d.db.updateTable('users').set({ password_hash: upgraded }).where('id', '=', user.id).where('password_hash', '=', user.password_hash).execute();
    }
    const method = this.mfaMethodOf(user);
    if (method) {
      if (method === 'sms' && (!this.p.sms || !user.phone_enc)) throw authErrors.mfaUnavailable('no SMS gateway or phone number');
      if (method === 'email' && !this.p.mail) throw authErrors.mfaUnavailable('no mail server configured');
      const ch = await this.d.db.transaction().execute(async (trx) => {
        const c = await this.p.mfa.createChallenge(trx, user.id, method, o.purpose, o.token);
        await this.d.audit.record(trx, { action: 'auth.login.password', actor: `user:${user.id}`, outcome: 'success', reason: 'MFA_REQUIRED', targets: { user: user.id }, source });
        return c;
      });
      if (ch.code) await this.deliverCode(user, method, ch.code);
      return { status: 'mfa_required', challenge: ch.challenge, method, expiresAt: ch.expiresAt };
    }
    return this.issue(user, o.purpose, o.token, source, 'password');
  }

  private async deliverCode(user: UserRow, method: string, code: string): Promise<void> {
    const n = notices.code(code, Math.round(this.d.config.mfa.challengeTtlSeconds / 60));
    if (method === 'sms') {
      const phone = await this.p.users.phone(user);
      await this.p.sms!.send({ to: phone!, text: n.text });
    } else {
      await this.p.mail!.send({ to: await this.p.users.email(user), subject: n.subject, text: n.text });
    }
  }

  async mfaStep(o: { challenge: string; code: string }, source: Source): Promise<LoginResult> {
    const res = await this.p.mfa.answer(o.challenge, o.code, (id) => this.p.users.byId(id));
    if (!res.ok) {
      const targets: Record<string, string> = res.userId ? { user: res.userId } : {};
      await this.d.audit.recordNow({
        action: 'auth.login.mfa',
        actor: res.userId ? `user:${res.userId}` : 'anonymous',
        outcome: 'failure',
        reason: res.reason === 'wrong-code' ? 'BAD_CODE' : res.reason === 'burned' ? 'CHALLENGE_BURNED' : 'CHALLENGE_INVALID',
        targets,
        source,
      });
      throw res.reason === 'wrong-code' ? authErrors.invalidCode() : authErrors.challengeInvalid();
    }
    const user = await this.p.users.byId(res.userId);
    if (!user || user.state !== 'active') throw authErrors.challengeInvalid();
    if (res.method === 'totp' && user.totp_confirmed === 0) {
      await this.d.db.updateTable('users').set({ totp_confirmed: 1 }).where('id', '=', user.id).execute();
    }
    const token = res.request ? (JSON.parse(res.request) as TokenRequest) : undefined;
    return this.issue(user, res.purpose === 'token' ? 'token' : 'session', token, source, res.method);
  }

  /** S2: a brand-new session (or token) at every sign-in */
  private async issue(user: UserRow, purpose: 'session' | 'token', tokenReq: TokenRequest | undefined, source: Source, factor: string): Promise<LoginResult> {
    return this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.nowMs();
      await trx.updateTable('users').set({ last_login_at: now, last_seen_at: now }).where('id', '=', user.id).execute();
      if (purpose === 'token') {
        const own = isApplianceRole(user.role) ? [...ROLE_PERMISSIONS[user.role]] : [];
        const scopes = tokenReq?.scopes?.length ? tokenReq.scopes : own;
        const t = await this.p.tokens.create(trx, user.id, { name: tokenReq?.name ?? 'coffre login', scopes, ttlDays: tokenReq?.ttlDays });
        await this.d.audit.record(trx, { action: 'auth.login', actor: `user:${user.id}`, outcome: 'success', reason: `TOKEN_${factor.toUpperCase()}`, targets: { user: user.id, token: t.view.id }, source });
        return { status: 'ok' as const, userId: user.id, token: t };
      }
      const s = await this.p.sessions.create(trx, user.id, { ip: source.ip, userAgent: source.userAgent });
      await this.d.audit.record(trx, { action: 'auth.login', actor: `user:${user.id}`, outcome: 'success', reason: `SESSION_${factor.toUpperCase()}`, targets: { user: user.id, session: s.id }, source });
      return { status: 'ok' as const, userId: user.id, session: s };
    });
  }
}
