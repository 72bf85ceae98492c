import type { AuthDeps, Source } from './deps.js';
import type { UserDirectory, UserRow } from './users.js';
import type { PasswordHasher } from './passwords/hasher.js';
import { LoginThrottle } from './throttle.js';
import type { SessionStore } from './sessions.js';
import type { SecondFactor, TotpProvisioning } from './mfa.js';
import type { ApiTokens } from './tokens.js';
import type { MailSender, SmsSender } from './messaging.js';
import { Links } from './links.js';
import { checkPassword } from './passwords/policy.js';
import { normaliseEmail, normaliseUsername } from './username.js';
import { authErrors } from './errors.js';
import { notices } from './notices.js';
import { addressPrefix } from './address.js';
import { newId } from './secrets.js';
import { isApplianceRole } from '../access/permissions.js';
import { AppError, errors } from '../shared/errors.js';

export interface AccountParts {
  users: UserDirectory;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  sessions: SessionStore;
  mfa: SecondFactor;
  tokens: ApiTokens;
  links: Links;
  mail?: MailSender | undefined;
  sms?: SmsSender | undefined;
}

export interface EnrolResult {
  userId: string;
  username: string;
  /** present when the user now has TOTP: shown once */
  totp?: TotpProvisioning;
  recoveryCodes?: string[];
}

const isUniqueViolation = (e: unknown) => /UNIQUE|unique constraint|duplicate key/i.test(String((e as Error)?.message ?? e));

/**
 * Accounts: invitation and enrolment (the user chooses their own password, P6), "forgot
 * password" and reset (R1–R5), password change (P7), second-factor set-up, and the admin actions
 * (disable, role, end sessions: S4). Every change is audited in its own transaction (fail closed).
 */
export class AccountService {
  constructor(
    private readonly d: AuthDeps,
    private readonly p: AccountParts,
  ) {}

  /** context words refused inside this user's password (P3/P4) */
  private context(u: { username: string }, email?: string): string[] {
    const out = [u.username];
    if (email) out.push(email.split('@')[0]!);
    if (this.d.organisation) out.push(this.d.organisation);
    return out;
  }

  validatePassword(password: string, u: { username: string }, email?: string): void {
    const reasons = checkPassword(password, this.d.config.password, this.context(u, email));
    if (reasons.length) throw authErrors.weakPassword(reasons);
  }

  /** creates an invited user and their enrolment link (sent by mail when `send`) */
  async invite(o: { username: string; email: string; role: string; phone?: string | undefined }, by: string, source: Source, send = false): Promise<{ user: UserRow; enrolUrl: string; expiresAt: number; mailed: boolean }> {
    const { display, key } = normaliseUsername(o.username);
    const email = normaliseEmail(o.email);
    if (!isApplianceRole(o.role)) throw authErrors.badRole(o.role);
    const id = newId();
    const enc = await this.p.users.encryptEmail(id, email);
    const phone = o.phone ? await this.p.users.encryptPhone(id, o.phone) : { phone_enc: null, phone_index: null };
    const now = this.d.clock.nowMs();
    let link: { url: string; expiresAt: number };
    try {
      link = await this.d.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('users')
          .values({ id, username: display, username_key: key, ...enc, ...phone, role: o.role, state: 'invited', password_hash: null, password_changed_at: null, mfa_method: null, totp_secret_enc: null, totp_pending_enc: null, totp_confirmed: 0, totp_last_step: null, created_at: now, created_by: by, last_login_at: null, last_seen_at: null, disabled_at: null })
          .execute();
        const l = await this.p.links.issue(trx, id, 'enrol', by);
        await this.d.audit.record(trx, { action: 'user.invite', actor: by, outcome: 'success', targets: { user: id, role: o.role }, source });
        return l;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw authErrors.usernameTaken();
      throw e;
    }
    const user = (await this.p.users.byId(id))!;
    let mailed = false;
    if (send && this.p.mail) {
      const n = notices.enrol(display, link.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: email, subject: n.subject, text: n.text });
      mailed = true;
    }
    return { user, enrolUrl: link.url, expiresAt: link.expiresAt, mailed };
  }

  /** a new enrolment link for an invited user (voids the older one, R1); sent by mail when `send` and a mail server is configured */
  async reinvite(userId: string, by: string, source: Source, send = false): Promise<{ enrolUrl: string; expiresAt: number; mailed: boolean }> {
    const u = await this.p.users.byId(userId);
    if (!u) throw errors.notFound('user');
    if (u.state !== 'invited') throw new AppError('USER_NOT_INVITED', 'the user has already enrolled; use a password reset', { httpStatus: 409, exitCode: 2 });
    const l = await this.d.db.transaction().execute(async (trx) => {
      const l = await this.p.links.issue(trx, userId, 'enrol', by);
      await this.d.audit.record(trx, { action: 'user.reinvite', actor: by, outcome: 'success', targets: { user: userId }, source });
      return l;
    });
    let mailed = false;
    if (send && this.p.mail) {
      const n = notices.enrol(u.username, l.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: await this.p.users.email(u), subject: n.subject, text: n.text });
      mailed = true;
    }
    return { enrolUrl: l.url, expiresAt: l.expiresAt, mailed };
  }

  /**
   * Completes an enrolment link: the user chooses their password. Roles that require a second
   * factor get a TOTP secret and recovery codes now (confirmed by their first sign-in).
   */
  async enrol(o: { token: string; password: string; mfa?: 'totp' | 'email' | 'sms' | undefined; phone?: string | undefined }, source: Source): Promise<EnrolResult> {
    const token = Links.tokenOf(o.token);
    const link = await this.p.links.peek(this.d.db, 'enrol', token);
    const user = link ? await this.p.users.byId(link.userId) : undefined;
    if (!link || !user || user.state !== 'invited') {
      await this.d.audit.recordNow({ action: 'user.enrol', actor: 'anonymous', outcome: 'failure', reason: 'LINK_INVALID', source });
      throw authErrors.linkInvalid();
    }
    this.validatePassword(o.password, user, await this.p.users.email(user));
    const hash = await this.p.hasher.hash(o.password);
    const required = this.d.config.mfa.requiredRoles.includes(user.role);
    const method = o.mfa ?? (required ? 'totp' : undefined);
    if (method === 'sms' && !o.phone && !user.phone_enc) throw errors.usage('a phone number is needed for SMS codes');
    // a factor this appliance cannot deliver would lock the person out at their first sign-in: refused before the link is used
    if ((method === 'email' && !this.p.mail) || (method === 'sms' && !this.p.sms)) {
      throw new AppError('MFA_METHOD_UNAVAILABLE', `this appliance cannot send codes by ${method === 'sms' ? 'text message (no SMS gateway is configured)' : 'e-mail (no mail server is configured)'}; choose an authenticator app`, { httpStatus: 409, exitCode: 2 });
    }
    const totp = method === 'totp' ? await this.p.mfa.newTotp(user) : undefined;
    const phone = o.phone ? await this.p.users.encryptPhone(user.id, o.phone) : undefined;
    const codes = await this.d.db.transaction().execute(async (trx) => {
      if (!(await this.p.links.consume(trx, link.id))) throw authErrors.linkInvalid();
      const now = this.d.clock.nowMs();
      await trx
        .updateTable('users')
        .set({ password_hash: hash, password_changed_at: now, state: 'active', mfa_method: method ?? null, totp_secret_enc: totp?.secretEnc ?? null, totp_confirmed: 0, ...(phone ?? {}) })
        .where('id', '=', user.id)
        .where('state', '=', 'invited')
        .execute();
      const codes = method ? await this.p.mfa.newRecoveryCodes(trx, user.id) : undefined;
      await this.d.audit.record(trx, { action: 'user.enrol', actor: `user:${user.id}`, outcome: 'success', reason: method ? `MFA_${method.toUpperCase()}` : 'NO_MFA', targets: { user: user.id }, source });
      return codes;
    }).catch(async (e: unknown) => {
      if (e instanceof AppError && e.code === 'LINK_INVALID') await this.d.audit.recordNow({ action: 'user.enrol', actor: 'anonymous', outcome: 'failure', reason: 'LINK_USED', targets: { user: user.id }, source });
      throw e;
    });
    return { userId: user.id, username: user.username, ...(totp ? { totp: totp.provisioning } : {}), ...(codes ? { recoveryCodes: codes } : {}) };
  }

  /**
   * R4: "forgot password". The caller answers the same thing at once whatever happens here;
   * this runs in the background: per-account budget, link, e-mail. Never throws.
   */
  async forgot(o: { username?: string | undefined; email?: string | undefined }, source: Source): Promise<void> {
    try {
      let user: UserRow | undefined;
      if (o.username) user = await this.p.users.byUsername(o.username);
      else if (o.email) {
        const found = await this.p.users.byEmail(o.email);
        user = found.length === 1 ? found[0] : undefined;
      }
      if (!user || user.state !== 'active') {
        await this.d.audit.recordNow({ action: 'auth.reset.request', actor: 'anonymous', outcome: 'failure', reason: user ? 'USER_NOT_ACTIVE' : 'UNKNOWN_USER', source });
        return;
      }
      const ok = await this.p.throttle.take(`reset:${user.id}`, this.d.config.links.resetPerAccountPerHour, 3_600_000);
      if (!ok) {
        await this.d.audit.recordNow({ action: 'auth.reset.request', actor: 'anonymous', outcome: 'denied', reason: 'THROTTLED', targets: { user: user.id }, source });
        return;
      }
      if (!this.p.mail) {
        this.d.log.warn({ event: 'auth.reset.no_mail' }, 'password reset requested but no mail server is configured');
        await this.d.audit.recordNow({ action: 'auth.reset.request', actor: 'anonymous', outcome: 'failure', reason: 'NO_MAIL', targets: { user: user.id }, source });
        return;
      }
      const u = user;
      const link = await this.d.db.transaction().execute(async (trx) => {
        const l = await this.p.links.issue(trx, u.id, 'reset', 'anonymous');
        await this.d.audit.record(trx, { action: 'auth.reset.request', actor: 'anonymous', outcome: 'success', targets: { user: u.id }, source });
        return l;
      });
      const n = notices.reset(u.username, link.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: await this.p.users.email(u), subject: n.subject, text: n.text });
    } catch (e) {
      this.d.log.error({ err: e, event: 'auth.reset.failed' }, 'password reset request failed');
    }
  }

  /** R4: per-address budget of reset requests (429 when over) */
  async forgotAllowed(source: Source): Promise<boolean> {
    return this.p.throttle.take(`resetaddr:${addressPrefix(source.ip)}`, this.d.config.links.resetPerAddressPerHour, 3_600_000);
  }

  /** R3/R5: consumes a reset link, sets the password, ends every session; no sign-in (the second factor still applies) */
  async reset(o: { token: string; password: string }, source: Source): Promise<void> {
    const token = Links.tokenOf(o.token);
    const link = await this.p.links.peek(this.d.db, 'reset', token);
    const user = link ? await this.p.users.byId(link.userId) : undefined;
    if (!link || !user || user.state !== 'active') {
      await this.d.audit.recordNow({ action: 'auth.reset', actor: 'anonymous', outcome: 'failure', reason: 'LINK_INVALID', source });
      throw authErrors.linkInvalid();
    }
    this.validatePassword(o.password, user, await this.p.users.email(user));
    const hash = await this.p.hasher.hash(o.password);
    await this.d.db.transaction().execute(async (trx) => {
      if (!(await this.p.links.consume(trx, link.id))) throw authErrors.linkInvalid();
      await trx.updateTable('users').set({ password_hash: hash, password_changed_at: this.d.clock.nowMs() }).where('id', '=', user.id).execute();
      const ended = await this.p.sessions.endAll(trx, user.id, 'password-reset');
      await this.d.audit.record(trx, { action: 'auth.reset', actor: `user:${user.id}`, outcome: 'success', targets: { user: user.id, sessionsEnded: String(ended) }, source });
    }).catch(async (e: unknown) => {
      if (e instanceof AppError && e.code === 'LINK_INVALID') await this.d.audit.recordNow({ action: 'auth.reset', actor: 'anonymous', outcome: 'failure', reason: 'LINK_USED', targets: { user: user.id }, source });
      throw e;
    });
    await this.notifyPasswordChanged(user);
  }

  private async notifyPasswordChanged(user: UserRow): Promise<void> {
    if (!this.p.mail) return;
    const n = notices.passwordChanged(user.username, new Date(this.d.clock.nowMs()).toISOString());
    await this.p.mail.send({ to: await this.p.users.email(user), subject: n.subject, text: n.text }).catch((e: unknown) => this.d.log.warn({ err: e, event: 'auth.notify_failed' }, 'could not send the password-change notice'));
  }

  /**
   * The current password, asked by a signed-in caller (password change, TOTP set-up): the same
   * counters and alerts as sign-in (each failure counts against the account and the address),
   * plus a per-user budget (`currentPasswordFailuresPer15Min`, then 429), reserved before the hash
   * is computed, so a stolen session or token can neither guess fast nor starve the hashing.
   */
  private async checkCurrentPassword(user: UserRow, password: string, action: string, source: Source): Promise<void> {
    const max = this.d.config.throttle.currentPasswordFailuresPer15Min;
    const window = 15 * 60_000;
    const key = `pwcheck:${user.id}`;
    const n = await this.p.throttle.hit(key, window);
    if (n > max) {
      await this.p.throttle.untake(key);
      await this.d.audit.recordNow({ action, actor: `user:${user.id}`, outcome: 'denied', reason: 'THROTTLED', targets: { user: user.id }, source });
      throw authErrors.rateLimited(await this.p.throttle.windowLeftSeconds(key, window));
    }
    const prefix = addressPrefix(source.ip);
    const accountKey = LoginThrottle.accountKey(user.username_key);
    const r = await this.p.throttle.reserve(accountKey, prefix, 'device', 0);
    if (await this.p.hasher.verify(user.password_hash!, password)) {
      await this.p.throttle.untake(key);
      if (r.ok) await r.release();
      return;
    }
    await this.d.audit.recordNow({ action, actor: `user:${user.id}`, outcome: 'failure', reason: 'BAD_PASSWORD', targets: { user: user.id }, source });
    if (n === max) {
      await this.d.alerts
        .raise({ kind: 'auth.bruteforce', severity: 'critical', message: `${max} wrong current passwords from a signed-in session or token of one account within 15 minutes (it may be stolen)`, targets: { user: user.id, stage: 'current-password' } })
        .catch((e: unknown) => this.d.log.error({ err: e }, 'alert failed'));
    }
    throw authErrors.currentPasswordWrong();
  }

  /** P7: needs the current password; notifies the user; optionally ends the other sessions */
  async changePassword(userId: string, o: { currentPassword: string; newPassword: string; endOtherSessions: boolean }, currentSession: string | undefined, source: Source): Promise<{ sessionsEnded: number }> {
    const user = await this.p.users.byId(userId);
    if (!user || user.state !== 'active' || !user.password_hash) throw errors.unauthenticated();
    await this.checkCurrentPassword(user, o.currentPassword, 'auth.password.change', source);
    this.validatePassword(o.newPassword, user, await this.p.users.email(user));
    const hash = await this.p.hasher.hash(o.newPassword);
    const ended = await this.d.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_hash: hash, password_changed_at: this.d.clock.nowMs() }).where('id', '=', userId).execute();
      const n = o.endOtherSessions ? await this.p.sessions.endAll(trx, userId, 'password-change', currentSession) : 0;
      await this.d.audit.record(trx, { action: 'auth.password.change', actor: `user:${userId}`, outcome: 'success', targets: { user: userId, sessionsEnded: String(n) }, source });
      return n;
    });
    await this.notifyPasswordChanged(user);
    return { sessionsEnded: ended };
  }

  /** S4: disabling ends every session and revokes every token */
  async setState(userId: string, state: 'active' | 'disabled', by: string, source: Source): Promise<void> {
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    if (state === 'active' && user.state !== 'disabled') throw new AppError('USER_NOT_DISABLED', 'only a disabled user can be enabled', { httpStatus: 409, exitCode: 2 });
    if (by === `user:${userId}` && state === 'disabled') throw new AppError('SELF_DISABLE', 'you cannot disable your own account', { httpStatus: 409, exitCode: 2 });
    await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.nowMs();
      if (state === 'disabled') {
        await trx.updateTable('users').set({ state: 'disabled', disabled_at: now }).where('id', '=', userId).execute();
        await this.p.sessions.endAll(trx, userId, 'user-disabled');
        await this.p.tokens.revokeAll(trx, userId, by);
        await this.p.links.voidAll(trx, userId);
      } else {
        await trx.updateTable('users').set({ state: user.password_hash ? 'active' : 'invited', disabled_at: null }).where('id', '=', userId).execute();
      }
      await this.d.audit.record(trx, { action: state === 'disabled' ? 'user.disable' : 'user.enable', actor: by, outcome: 'success', targets: { user: userId }, source });
    });
  }

  async setRole(userId: string, role: string, by: string, source: Source): Promise<void> {
    if (!isApplianceRole(role)) throw authErrors.badRole(role);
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    await this.d.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ role }).where('id', '=', userId).execute();
      // a changed role starts from fresh sessions
      await this.p.sessions.endAll(trx, userId, 'role-changed');
      await this.d.audit.record(trx, { action: 'user.role', actor: by, outcome: 'success', targets: { user: userId, role, previous: user.role }, source });
    });
  }

  /** S4: an admin (or the user) ends sessions server-side */
  async endSessions(userId: string, by: string, source: Source, except?: string): Promise<number> {
    return this.d.db.transaction().execute(async (trx) => {
      const n = await this.p.sessions.endAll(trx, userId, by === `user:${userId}` ? 'ended-by-user' : 'ended-by-admin', except);
      await this.d.audit.record(trx, { action: 'session.kill', actor: by, outcome: 'success', targets: { user: userId, count: String(n) }, source });
      return n;
    });
  }

  async endSession(userId: string, sessionId: string, by: string, source: Source, reason = 'ended-by-user', action = 'session.kill'): Promise<boolean> {
    return this.d.db.transaction().execute(async (trx) => {
      const ok = await this.p.sessions.end(trx, sessionId, reason, userId);
      if (ok) await this.d.audit.record(trx, { action, actor: by, outcome: 'success', targets: { user: userId, session: sessionId }, source });
      return ok;
    });
  }

  /** starts (or restarts) TOTP for the signed-in user; the current factor keeps working until `confirmTotp` */
  async startTotp(userId: string, source: Source): Promise<TotpProvisioning> {
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.unauthenticated();
    const t = await this.p.mfa.newTotp(user);
    await this.d.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ totp_pending_enc: t.secretEnc }).where('id', '=', userId).execute();
      await this.d.audit.record(trx, { action: 'auth.mfa.totp.start', actor: `user:${userId}`, outcome: 'success', targets: { user: userId }, source });
    });
    return t.provisioning;
  }

  /**
   * Confirms the pending TOTP secret with a code from it. Changing an authentication factor needs
   * the current password (a stolen session alone cannot take over the second factor).
   */
  async confirmTotp(userId: string, o: { code: string; currentPassword: string }, currentSession: string | undefined, source: Source): Promise<{ recoveryCodes: string[] }> {
    const user = await this.p.users.byId(userId);
    if (!user || user.state !== 'active' || !user.password_hash) throw errors.unauthenticated();
    if (!user.totp_pending_enc) throw errors.usage('start TOTP set-up first (POST /auth/mfa/totp)');
    await this.checkCurrentPassword(user, o.currentPassword, 'auth.mfa.totp.confirm', source);
    if (!(await this.p.mfa.verifyTotp(user, o.code, user.totp_pending_enc))) {
      await this.d.audit.recordNow({ action: 'auth.mfa.totp.confirm', actor: `user:${userId}`, outcome: 'failure', reason: 'BAD_CODE', targets: { user: userId }, source });
      throw authErrors.invalidCode();
    }
    return this.d.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ mfa_method: 'totp', totp_secret_enc: user.totp_pending_enc, totp_pending_enc: null, totp_confirmed: 1 }).where('id', '=', userId).execute();
      const codes = await this.p.mfa.newRecoveryCodes(trx, userId);
      // the other sessions were opened with the old factor
      await this.p.sessions.endAll(trx, userId, 'mfa-changed', currentSession);
      await this.d.audit.record(trx, { action: 'auth.mfa.totp.confirm', actor: `user:${userId}`, outcome: 'success', targets: { user: userId }, source });
      return { recoveryCodes: codes };
    });
  }
}
