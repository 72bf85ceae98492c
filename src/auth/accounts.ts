import type { Kysely } from 'kysely';
import type { AuthSchema } from '../db/index.js';
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
import { notices, ownerAlertText, type OwnerAlertWhat } from './notices.js';
import { addressPrefix } from './address.js';
import { newId } from './secrets.js';
import { isApplianceRole } from '../access/index.js';
import { AppError, errors } from '../shared/errors.js';
import type { Language } from '../shared/i18n/index.js';

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

/** ids for an audit or alert target (at most 128 characters: the first three whole ids, then how many more) */
const idList = (ids: string[]) => {
  const head = ids.slice(0, 3).join(',');
  return ids.length > 3 ? `${head},+${ids.length - 3}` : head;
};

const isUniqueViolation = (e: unknown) =>
  /UNIQUE|unique constraint|duplicate key/i.test(String((e as Error)?.message ?? e));

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

  /** whether links and codes can be e-mailed (a mail server is configured) */
  get canMail(): boolean {
    return this.p.mail !== undefined;
  }

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
  async invite(
    o: { username: string; email: string; role: string; phone?: string | undefined; language?: Language | undefined },
    by: string,
    source: Source,
    send = false,
  ): Promise<{ user: UserRow; enrolUrl: string; expiresAt: number; mailed: boolean }> {
    const { display, key, skeleton } = normaliseUsername(o.username);
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
          .values({
            id,
            username: display,
            username_key: key,
            ...enc,
            ...phone,
            role: o.role,
            state: 'invited',
            password_hash: null,
            password_changed_at: null,
            mfa_method: null,
            totp_secret_enc: null,
            totp_pending_enc: null,
            totp_confirmed: 0,
            totp_last_step: null,
            created_at: now,
            created_by: by,
            last_login_at: null,
            last_seen_at: null,
            disabled_at: null,
            username_skeleton: skeleton,
            pending_role: null,
            language: o.language ?? null,
          })
          .execute();
        const l = await this.p.links.issue(trx, id, 'enrol', by);
        await this.d.audit.record(trx, {
          action: 'user.invite',
          actor: by,
          outcome: 'success',
          targets: { user: id, role: o.role },
          source,
        });
        return l;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw authErrors.usernameTaken();
      throw e;
    }
    const user = (await this.p.users.byId(id))!;
    let mailed = false;
    if (send && this.p.mail) {
      const n = notices.enrol(user, display, link.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: email, subject: n.subject, text: n.text });
      mailed = true;
    }
    return { user, enrolUrl: link.url, expiresAt: link.expiresAt, mailed };
  }

  /** a new enrolment link for an invited user (voids the older one, R1); sent by mail when `send` and a mail server is configured */
  async reinvite(
    userId: string,
    by: string,
    source: Source,
    send = false,
  ): Promise<{ enrolUrl: string; expiresAt: number; mailed: boolean }> {
    const u = await this.p.users.byId(userId);
    if (!u) throw errors.notFound('user');
    // an account that has a password or ever signed in is its owner's: never a new link for it
    if (u.state !== 'invited' || u.password_hash !== null || u.last_login_at !== null)
      throw new AppError('USER_NOT_INVITED', 'the user has already enrolled; use a password reset', {
        httpStatus: 409,
        exitCode: 2,
      });
    const { link: l, stripped } = await this.d.db.transaction().execute(async (trx) => {
      // whoever holds this link becomes the account: it must not carry anyone's workspace with it
      const stripped = await this.stripMemberships(trx, userId);
      const link = await this.p.links.issue(trx, userId, 'enrol', by);
      await this.d.audit.record(trx, {
        action: 'user.reinvite',
        actor: by,
        outcome: 'success',
        targets: { user: userId, ...(stripped.length ? { membershipsRemoved: idList(stripped) } : {}) },
        source,
      });
      return { link, stripped };
    });
    await this.alertOwners(stripped, u, by, 'reinvite');
    let mailed = false;
    if (send && this.p.mail) {
      const n = notices.enrol(u, u.username, l.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: await this.p.users.email(u), subject: n.subject, text: n.text });
      mailed = true;
    }
    return { enrolUrl: l.url, expiresAt: l.expiresAt, mailed };
  }

  /** removes every workspace membership of a user (returns the workspace ids) */
  private async stripMemberships(trx: Kysely<AuthSchema>, userId: string): Promise<string[]> {
    const rows = await trx
      .selectFrom('workspace_members')
      .select('workspace_id')
      .where('user_id', '=', userId)
      .execute();
    if (rows.length) await trx.deleteFrom('workspace_members').where('user_id', '=', userId).execute();
    return rows.map((r) => r.workspace_id);
  }

  /**
   * Tells the owners of the workspaces concerned that an admin issued a credential for one of
   * their members: an alert (ids only) and, where a mail server is configured, an e-mail to each
   * owner. Never throws (the action it reports is already recorded in the audit trail).
   */
  private async alertOwners(workspaceIds: string[], user: UserRow, by: string, what: OwnerAlertWhat): Promise<void> {
    if (!workspaceIds.length) return;
    try {
      const owners = await this.d.db
        .selectFrom('workspace_members')
        .select('user_id')
        .distinct()
        .where('workspace_id', 'in', workspaceIds)
        .where('role', '=', 'owner')
        .execute();
      await this.d.alerts.raise({
        kind: 'auth.admin_credential',
        severity: 'warning',
        message: `${by} acted on the account ${user.username} (member of ${workspaceIds.length} workspace(s)): ${ownerAlertText(what)}`,
        targets: { user: user.id, by, workspaces: idList(workspaceIds), owners: idList(owners.map((o) => o.user_id)) },
      });
      if (!this.p.mail) return;
      for (const o of owners) {
        const owner = await this.p.users.byId(o.user_id);
        if (!owner || owner.state !== 'active') continue;
        const n = notices.ownerAlert(owner, owner.username, user.username, what);
        await this.p.mail.send({ to: await this.p.users.email(owner), subject: n.subject, text: n.text });
      }
    } catch (e) {
      this.d.log.error({ err: e, event: 'auth.owner_alert_failed' }, 'could not alert the workspace owners');
    }
  }

  /** the workspaces a user is a member of */
  private async membershipsOf(userId: string): Promise<string[]> {
    return (
      await this.d.db.selectFrom('workspace_members').select('workspace_id').where('user_id', '=', userId).execute()
    ).map((r) => r.workspace_id);
  }

  /**
   * Completes an enrolment link: the user chooses their password. Roles that require a second
   * factor get a TOTP secret and recovery codes now (confirmed by their first sign-in).
   */
  async enrol(
    o: { token: string; password: string; mfa?: 'totp' | 'email' | 'sms' | undefined; phone?: string | undefined },
    source: Source,
  ): Promise<EnrolResult> {
    const token = Links.tokenOf(o.token);
    const link = await this.p.links.peek(this.d.db, 'enrol', token);
    const user = link ? await this.p.users.byId(link.userId) : undefined;
    if (!link || !user || user.state !== 'invited') {
      await this.d.audit.recordNow({
        action: 'user.enrol',
        actor: 'anonymous',
        outcome: 'failure',
        reason: 'LINK_INVALID',
        source,
      });
      throw authErrors.linkInvalid();
    }
    this.validatePassword(o.password, user, await this.p.users.email(user));
    const hash = await this.p.hasher.hash(o.password);
    const required = this.d.config.mfa.requiredRoles.includes(user.role);
    const method = o.mfa ?? (required ? 'totp' : undefined);
    if (method === 'sms' && !o.phone && !user.phone_enc) throw errors.usage('a phone number is needed for SMS codes');
    // a factor this appliance cannot deliver would lock the person out at their first sign-in: refused before the link is used
    if ((method === 'email' && !this.p.mail) || (method === 'sms' && !this.p.sms)) {
      throw new AppError(
        'MFA_METHOD_UNAVAILABLE',
        `this appliance cannot send codes by ${method === 'sms' ? 'text message (no SMS gateway is configured)' : 'e-mail (no mail server is configured)'}; choose an authenticator app`,
        { httpStatus: 409, exitCode: 2 },
      );
    }
    const totp = method === 'totp' ? await this.p.mfa.newTotp(user) : undefined;
    const phone = o.phone ? await this.p.users.encryptPhone(user.id, o.phone) : undefined;
    const codes = await this.d.db
      .transaction()
      .execute(async (trx) => {
        if (!(await this.p.links.consume(trx, link.id))) throw authErrors.linkInvalid();
        const now = this.d.clock.nowMs();
        await trx
          .updateTable('users')
          .set({
            password_hash: hash,
            password_changed_at: now,
            state: 'active',
            mfa_method: method ?? null,
            totp_secret_enc: totp?.secretEnc ?? null,
            totp_confirmed: 0,
            ...(phone ?? {}),
          })
          .where('id', '=', user.id)
          .where('state', '=', 'invited')
          .execute();
        const codes = method ? await this.p.mfa.newRecoveryCodes(trx, user.id) : undefined;
        await this.d.audit.record(trx, {
          action: 'user.enrol',
          actor: `user:${user.id}`,
          outcome: 'success',
          reason: method ? `MFA_${method.toUpperCase()}` : 'NO_MFA',
          targets: { user: user.id },
          source,
        });
        return codes;
      })
      .catch(async (e: unknown) => {
        if (e instanceof AppError && e.code === 'LINK_INVALID')
          await this.d.audit.recordNow({
            action: 'user.enrol',
            actor: 'anonymous',
            outcome: 'failure',
            reason: 'LINK_USED',
            targets: { user: user.id },
            source,
          });
        throw e;
      });
    return {
      userId: user.id,
      username: user.username,
      ...(totp ? { totp: totp.provisioning } : {}),
      ...(codes ? { recoveryCodes: codes } : {}),
    };
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
        await this.d.audit.recordNow({
          action: 'auth.reset.request',
          actor: 'anonymous',
          outcome: 'failure',
          reason: user ? 'USER_NOT_ACTIVE' : 'UNKNOWN_USER',
          source,
        });
        return;
      }
      const ok = await this.p.throttle.take(`reset:${user.id}`, this.d.config.links.resetPerAccountPerHour, 3_600_000);
      if (!ok) {
        await this.d.audit.recordNow({
          action: 'auth.reset.request',
          actor: 'anonymous',
          outcome: 'denied',
          reason: 'THROTTLED',
          targets: { user: user.id },
          source,
        });
        return;
      }
      if (!this.p.mail) {
        this.d.log.warn({ event: 'auth.reset.no_mail' }, 'password reset requested but no mail server is configured');
        await this.d.audit.recordNow({
          action: 'auth.reset.request',
          actor: 'anonymous',
          outcome: 'failure',
          reason: 'NO_MAIL',
          targets: { user: user.id },
          source,
        });
        return;
      }
      const u = user;
      const link = await this.d.db.transaction().execute(async (trx) => {
        const l = await this.p.links.issue(trx, u.id, 'reset', 'anonymous');
        await this.d.audit.record(trx, {
          action: 'auth.reset.request',
          actor: 'anonymous',
          outcome: 'success',
          targets: { user: u.id },
          source,
        });
        return l;
      });
      const n = notices.reset(u, u.username, link.url, this.d.config.links.ttlHours);
      await this.p.mail.send({ to: await this.p.users.email(u), subject: n.subject, text: n.text });
    } catch (e) {
      this.d.log.error({ err: e, event: 'auth.reset.failed' }, 'password reset request failed');
    }
  }

  /**
   * L4: a refused anonymous request (login CSRF on a public form) is recorded in aggregate: at most
   * one record per source address (IPv4 /32, IPv6 /64) and minute, so a flood cannot fill the trail.
   */
  async recordPublicRefusal(source: Source, reason: string, route: string): Promise<void> {
    const prefix = addressPrefix(source.ip);
    if (!(await this.p.throttle.take(`refusal:${reason}:${prefix}`, 1, 60_000))) return;
    await this.d.audit.recordNow({
      action: 'auth.csrf',
      actor: 'anonymous',
      outcome: 'denied',
      reason,
      targets: { address: prefix, route, window: '60s' },
      source,
    });
  }

  /** R4: per-address budget of reset requests (429 when over) */
  async forgotAllowed(source: Source): Promise<boolean> {
    return this.p.throttle.take(
      `resetaddr:${addressPrefix(source.ip)}`,
      this.d.config.links.resetPerAddressPerHour,
      3_600_000,
    );
  }

  /**
   * R3/R5: consumes a reset link, sets the password, ends every session and revokes every API
   * token; no sign-in (the second factor still applies). A link an admin started (POST
   * /users/{id}/reset) also needs a code from the user's own authenticator (or a recovery code),
   * so the admin who may hold the link still cannot use it; 5 wrong codes void it. A link from a
   * two-admin recovery replaces the lost factor: the user gets a new authenticator secret and
   * recovery codes, shown once.
   */
  async reset(
    o: { token: string; password: string; code?: string | undefined },
    source: Source,
  ): Promise<{ totp?: TotpProvisioning; recoveryCodes?: string[] }> {
    const token = Links.tokenOf(o.token);
    const link = await this.p.links.peek(this.d.db, 'reset', token);
    const user = link ? await this.p.users.byId(link.userId) : undefined;
    if (!link || !user || user.state !== 'active') {
      await this.d.audit.recordNow({
        action: 'auth.reset',
        actor: 'anonymous',
        outcome: 'failure',
        reason: 'LINK_INVALID',
        source,
      });
      throw authErrors.linkInvalid();
    }
    this.validatePassword(o.password, user, await this.p.users.email(user));
    const recovery = link.createdBy.startsWith('recovery:') ? link.createdBy.slice('recovery:'.length) : undefined;
    if (!recovery && link.createdBy !== 'anonymous' && user.mfa_method === 'totp')
      await this.checkResetCode(link.id, user, o.code, source);
    const hash = await this.p.hasher.hash(o.password);
    const totp = recovery ? await this.p.mfa.newTotp(user) : undefined;
    const codes = await this.d.db
      .transaction()
      .execute(async (trx) => {
        if (!(await this.p.links.consume(trx, link.id))) throw authErrors.linkInvalid();
        await trx
          .updateTable('users')
          .set({ password_hash: hash, password_changed_at: this.d.clock.nowMs() })
          .where('id', '=', user.id)
          .execute();
        let codes: string[] | undefined;
        if (totp) {
          // the lost factor is replaced; confirmed by the next sign-in
          await trx
            .updateTable('users')
            .set({
              mfa_method: 'totp',
              totp_secret_enc: totp.secretEnc,
              totp_pending_enc: null,
              totp_confirmed: 0,
              totp_last_step: null,
            })
            .where('id', '=', user.id)
            .execute();
          codes = await this.p.mfa.newRecoveryCodes(trx, user.id);
          await trx
            .updateTable('account_recoveries')
            .set({ closed_at: this.d.clock.nowMs() })
            .where('id', '=', recovery!)
            .execute();
        }
        const ended = await this.p.sessions.endAll(trx, user.id, 'password-reset');
        const revoked = await this.p.tokens.revokeAll(trx, user.id, 'password-reset');
        await this.d.audit.record(trx, {
          action: 'auth.reset',
          actor: `user:${user.id}`,
          outcome: 'success',
          reason: recovery ? 'RECOVERY' : link.createdBy === 'anonymous' ? 'SELF_SERVICE' : 'ADMIN_STARTED',
          targets: { user: user.id, sessionsEnded: String(ended), tokensRevoked: String(revoked) },
          source,
        });
        return codes;
      })
      .catch(async (e: unknown) => {
        if (e instanceof AppError && e.code === 'LINK_INVALID')
          await this.d.audit.recordNow({
            action: 'auth.reset',
            actor: 'anonymous',
            outcome: 'failure',
            reason: 'LINK_USED',
            targets: { user: user.id },
            source,
          });
        throw e;
      });
    await this.notifyPasswordChanged(user);
    return totp ? { totp: totp.provisioning, recoveryCodes: codes! } : {};
  }

  /** the user's own second factor, for a reset an admin started (5 wrong codes void the link) */
  private async checkResetCode(linkId: string, user: UserRow, code: string | undefined, source: Source): Promise<void> {
    if (!code)
      throw new AppError(
        'CODE_REQUIRED',
        'an administrator started this reset: give a code from your authenticator app (or one of your recovery codes)',
        { httpStatus: 401, exitCode: 2 },
      );
    const ok = /^\d{6}$/.test(code.trim())
      ? await this.p.mfa.verifyTotp(user, code.trim())
      : await this.p.mfa.useRecoveryCode(user.id, code);
    if (ok) return;
    await this.d.audit.recordNow({
      action: 'auth.reset',
      actor: 'anonymous',
      outcome: 'failure',
      reason: 'BAD_CODE',
      targets: { user: user.id },
      source,
    });
    if (!(await this.p.throttle.take(`resetcode:${linkId}`, 4, this.d.config.links.ttlHours * 3_600_000))) {
      await this.d.db.transaction().execute((trx) => this.p.links.voidOne(trx, linkId));
      await this.d.alerts
        .raise({
          kind: 'auth.reset.codes',
          severity: 'warning',
          message: `wrong second-factor codes voided a reset link of ${user.username}`,
          targets: { user: user.id },
        })
        .catch(() => undefined);
    }
    throw authErrors.invalidCode();
  }

  private refuseSelf(userId: string, by: string): void {
    if (by === `user:${userId}`)
      throw new AppError('SELF_RESET', 'use "forgot password" or change your password from your account', {
        httpStatus: 409,
        exitCode: 2,
      });
  }

  /** issues a reset link for an admin-started reset or recovery; mailed when a mail server is configured */
  private async issueResetLink(
    user: UserRow,
    createdBy: string,
    audit: { action: string; by: string; source: Source; targets: Record<string, string> },
    also?: (trx: Kysely<AuthSchema>, linkId: string) => Promise<void>,
  ): Promise<{ mailed: boolean; resetUrl?: string; expiresAt: number }> {
    const link = await this.d.db.transaction().execute(async (trx) => {
      const l = await this.p.links.issue(trx, user.id, 'reset', createdBy);
      if (also) await also(trx, l.id);
      await this.d.audit.record(trx, {
        action: audit.action,
        actor: audit.by,
        outcome: 'success',
        targets: { user: user.id, ...audit.targets },
        source: audit.source,
      });
      return l;
    });
    await this.alertOwners(
      await this.membershipsOf(user.id),
      user,
      audit.by,
      audit.action === 'auth.recovery.approve' ? 'recovery' : 'reset',
    );
    if (!this.p.mail) return { mailed: false, resetUrl: link.url, expiresAt: link.expiresAt };
    const n = notices.reset(user, user.username, link.url, this.d.config.links.ttlHours);
    await this.p.mail.send({ to: await this.p.users.email(user), subject: n.subject, text: n.text });
    return { mailed: true, expiresAt: link.expiresAt };
  }

  /**
   * An admin starts a password reset for an active user. The link goes to the user by e-mail when
   * a mail server is configured; otherwise the admin gets it, but it only works with a code from
   * the user's own authenticator, so it is never a usable credential for the admin. A user
   * without an authenticator (and no mail server) needs a two-admin recovery instead.
   */
  async adminReset(
    userId: string,
    by: string,
    source: Source,
  ): Promise<{ mailed: boolean; resetUrl?: string; expiresAt: number; codeRequired: boolean }> {
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    if (user.state === 'erased') throw authErrors.erased();
    this.refuseSelf(userId, by);
    if (user.state !== 'active')
      throw new AppError('USER_NOT_ACTIVE', 'only an active user can be reset; an invited user gets a new invitation', {
        httpStatus: 409,
        exitCode: 2,
      });
    const codeRequired = user.mfa_method === 'totp';
    if (!this.p.mail && !codeRequired) {
      throw new AppError(
        'RESET_NEEDS_SECOND_FACTOR',
        'this appliance cannot e-mail the link and the user has no authenticator app to prove it is them',
        {
          httpStatus: 409,
          exitCode: 2,
          hint: 'if they lost both password and second factor, two different admins must each start an account recovery (coffre user reset USER --lost-factor)',
        },
      );
    }
    const r = await this.issueResetLink(user, by, {
      action: 'auth.reset.admin',
      by,
      source,
      targets: { codeRequired: String(codeRequired) },
    });
    return { ...r, codeRequired };
  }

  /**
   * A user who lost both password and second factor: one admin requests a recovery, a different
   * admin approves it (each recorded); the approval issues a reset link that replaces the second
   * factor. The owners of the user's workspaces are alerted.
   */
  async recover(
    userId: string,
    by: string,
    source: Source,
  ): Promise<{ status: 'requested' } | { status: 'approved'; mailed: boolean; resetUrl?: string; expiresAt: number }> {
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    if (user.state === 'erased') throw authErrors.erased();
    this.refuseSelf(userId, by);
    if (user.state !== 'active')
      throw new AppError('USER_NOT_ACTIVE', 'only an active user can be recovered', { httpStatus: 409, exitCode: 2 });
    const now = this.d.clock.nowMs();
    const open = await this.d.db
      .selectFrom('account_recoveries')
      .selectAll()
      .where('user_id', '=', userId)
      .where('approved_at', 'is', null)
      .where('closed_at', 'is', null)
      .where('requested_at', '>', now - this.d.config.links.ttlHours * 3_600_000)
      .executeTakeFirst();
    if (!open) {
      await this.d.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('account_recoveries')
          .values({
            id: newId(),
            user_id: userId,
            requested_by: by,
            requested_at: now,
            approved_by: null,
            approved_at: null,
            link_id: null,
            closed_at: null,
          })
          .execute();
        await this.d.audit.record(trx, {
          action: 'auth.recovery.request',
          actor: by,
          outcome: 'success',
          targets: { user: userId },
          source,
        });
      });
      await this.d.alerts
        .raise({
          kind: 'auth.recovery',
          severity: 'warning',
          message: `${by} requested an account recovery for ${user.username}; a second admin must approve it`,
          targets: { user: userId, by },
        })
        .catch((e: unknown) => this.d.log.error({ err: e }, 'alert failed'));
      return { status: 'requested' };
    }
    if (open.requested_by === by) {
      await this.d.audit.recordNow({
        action: 'auth.recovery.approve',
        actor: by,
        outcome: 'denied',
        reason: 'SAME_ADMIN',
        targets: { user: userId },
        source,
      });
      throw new AppError('SAME_ADMIN', 'a different admin must approve this recovery', {
        httpStatus: 409,
        exitCode: 2,
      });
    }
    const r = await this.issueResetLink(
      user,
      `recovery:${open.id}`,
      { action: 'auth.recovery.approve', by, source, targets: { requestedBy: open.requested_by } },
      async (trx, linkId) => {
        await trx
          .updateTable('account_recoveries')
          .set({ approved_by: by, approved_at: now, link_id: linkId })
          .where('id', '=', open.id)
          .where('approved_at', 'is', null)
          .execute();
      },
    );
    return { status: 'approved', ...r };
  }

  private async notifyPasswordChanged(user: UserRow): Promise<void> {
    if (!this.p.mail) return;
    const n = notices.passwordChanged(user, user.username, this.d.clock.nowMs());
    await this.p.mail
      .send({ to: await this.p.users.email(user), subject: n.subject, text: n.text })
      .catch((e: unknown) =>
        this.d.log.warn({ err: e, event: 'auth.notify_failed' }, 'could not send the password-change notice'),
      );
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
      await this.d.audit.recordNow({
        action,
        actor: `user:${user.id}`,
        outcome: 'denied',
        reason: 'THROTTLED',
        targets: { user: user.id },
        source,
      });
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
    // the signed-in caller counts as a known client: its failure counts for the account and the address now
    if (r.ok) await r.failed();
    await this.d.audit.recordNow({
      action,
      actor: `user:${user.id}`,
      outcome: 'failure',
      reason: 'BAD_PASSWORD',
      targets: { user: user.id },
      source,
    });
    if (n === max) {
      await this.d.alerts
        .raise({
          kind: 'auth.bruteforce',
          severity: 'critical',
          message: `${max} wrong current passwords from a signed-in session or token of one account within 15 minutes (it may be stolen)`,
          targets: { user: user.id, stage: 'current-password' },
        })
        .catch((e: unknown) => this.d.log.error({ err: e }, 'alert failed'));
    }
    throw authErrors.currentPasswordWrong();
  }

  /** P7: needs the current password; notifies the user; optionally ends the other sessions */
  async changePassword(
    userId: string,
    o: { currentPassword: string; newPassword: string; endOtherSessions: boolean; keepTokens?: boolean | undefined },
    currentSession: string | undefined,
    source: Source,
  ): Promise<{ sessionsEnded: number; tokensRevoked: number }> {
    const user = await this.p.users.byId(userId);
    if (!user || user.state !== 'active' || !user.password_hash) throw errors.unauthenticated();
    await this.checkCurrentPassword(user, o.currentPassword, 'auth.password.change', source);
    this.validatePassword(o.newPassword, user, await this.p.users.email(user));
    const hash = await this.p.hasher.hash(o.newPassword);
    const ended = await this.d.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ password_hash: hash, password_changed_at: this.d.clock.nowMs() })
        .where('id', '=', userId)
        .execute();
      const n = o.endOtherSessions ? await this.p.sessions.endAll(trx, userId, 'password-change', currentSession) : 0;
      // API tokens go with the old password unless the user explicitly keeps them
      const t = o.keepTokens === true ? 0 : await this.p.tokens.revokeAll(trx, userId, 'password-change');
      await this.d.audit.record(trx, {
        action: 'auth.password.change',
        actor: `user:${userId}`,
        outcome: 'success',
        reason: o.keepTokens === true ? 'TOKENS_KEPT' : 'TOKENS_REVOKED',
        targets: { user: userId, sessionsEnded: String(n), tokensRevoked: String(t) },
        source,
      });
      return { sessionsEnded: n, tokensRevoked: t };
    });
    await this.notifyPasswordChanged(user);
    return ended;
  }

  /** S4: disabling ends every session and revokes every token */
  async setState(userId: string, state: 'active' | 'disabled', by: string, source: Source): Promise<void> {
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    if (user.state === 'erased') throw authErrors.erased();
    if (state === 'active' && user.state !== 'disabled')
      throw new AppError('USER_NOT_DISABLED', 'only a disabled user can be enabled', { httpStatus: 409, exitCode: 2 });
    if (by === `user:${userId}` && state === 'disabled')
      throw new AppError('SELF_DISABLE', 'you cannot disable your own account', { httpStatus: 409, exitCode: 2 });
    await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.nowMs();
      if (state === 'disabled') {
        await trx.updateTable('users').set({ state: 'disabled', disabled_at: now }).where('id', '=', userId).execute();
        await this.p.sessions.endAll(trx, userId, 'user-disabled');
        await this.p.tokens.revokeAll(trx, userId, by);
        await this.p.links.voidAll(trx, userId);
      } else {
        await trx
          .updateTable('users')
          .set({ state: user.password_hash ? 'active' : 'invited', disabled_at: null })
          .where('id', '=', userId)
          .execute();
      }
      await this.d.audit.record(trx, {
        action: state === 'disabled' ? 'user.disable' : 'user.enable',
        actor: by,
        outcome: 'success',
        targets: { user: userId },
        source,
      });
    });
  }

  /** whether giving this user `role` must wait for a second factor they do not have yet (Z5) */
  roleWaitsForFactor(user: Pick<UserRow, 'mfa_method'>, role: string): boolean {
    return this.d.config.mfa.requiredRoles.includes(role) && !user.mfa_method;
  }

  /**
   * Z5: a role change ends the user's sessions and revokes their API tokens (they were minted for
   * the old role). A role that requires a second factor the user does not have yet is kept
   * pending (`pending_role`) and takes effect when they confirm one (`confirmTotp`); until then
   * they keep their current role.
   */
  async setRole(
    userId: string,
    role: string,
    by: string,
    source: Source,
  ): Promise<{ role: string; pendingRole: string | null }> {
    if (!isApplianceRole(role)) throw authErrors.badRole(role);
    const user = await this.p.users.byId(userId);
    if (!user) throw errors.notFound('user');
    if (user.state === 'erased') throw authErrors.erased();
    const waits = this.roleWaitsForFactor(user, role) && role !== user.role;
    await this.d.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set(waits ? { pending_role: role } : { role, pending_role: null })
        .where('id', '=', userId)
        .execute();
      // a changed role starts from fresh sessions and tokens
      const ended = await this.p.sessions.endAll(trx, userId, 'role-changed');
      const revoked = await this.p.tokens.revokeAll(trx, userId, by);
      await this.d.audit.record(trx, {
        action: 'user.role',
        actor: by,
        outcome: 'success',
        ...(waits ? { reason: 'PENDING_SECOND_FACTOR' } : {}),
        targets: {
          user: userId,
          role,
          previous: user.role,
          sessionsEnded: String(ended),
          tokensRevoked: String(revoked),
        },
        source,
      });
    });
    return waits ? { role: user.role, pendingRole: role } : { role, pendingRole: null };
  }

  /** S4: an admin (or the user) ends sessions server-side */
  async endSessions(userId: string, by: string, source: Source, except?: string): Promise<number> {
    return (await this.endAccess(userId, by, source, except, false)).ended;
  }

  /** S4/S6: an admin's "end sessions" also revokes the user's API tokens */
  async endAccess(
    userId: string,
    by: string,
    source: Source,
    except?: string,
    revokeTokens = true,
  ): Promise<{ ended: number; tokensRevoked: number }> {
    return this.d.db.transaction().execute(async (trx) => {
      const n = await this.p.sessions.endAll(
        trx,
        userId,
        by === `user:${userId}` ? 'ended-by-user' : 'ended-by-admin',
        except,
      );
      const t = revokeTokens ? await this.p.tokens.revokeAll(trx, userId, by) : 0;
      await this.d.audit.record(trx, {
        action: 'session.kill',
        actor: by,
        outcome: 'success',
        targets: { user: userId, count: String(n), ...(revokeTokens ? { tokensRevoked: String(t) } : {}) },
        source,
      });
      return { ended: n, tokensRevoked: t };
    });
  }

  async endSession(
    userId: string,
    sessionId: string,
    by: string,
    source: Source,
    reason = 'ended-by-user',
    action = 'session.kill',
  ): Promise<boolean> {
    return this.d.db.transaction().execute(async (trx) => {
      const ok = await this.p.sessions.end(trx, sessionId, reason, userId);
      if (ok)
        await this.d.audit.record(trx, {
          action,
          actor: by,
          outcome: 'success',
          targets: { user: userId, session: sessionId },
          source,
        });
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
      await this.d.audit.record(trx, {
        action: 'auth.mfa.totp.start',
        actor: `user:${userId}`,
        outcome: 'success',
        targets: { user: userId },
        source,
      });
    });
    return t.provisioning;
  }

  /**
   * Confirms the pending TOTP secret with a code from it. Changing an authentication factor needs
   * the current password (a stolen session alone cannot take over the second factor).
   */
  async confirmTotp(
    userId: string,
    o: { code: string; currentPassword: string },
    currentSession: string | undefined,
    source: Source,
  ): Promise<{ recoveryCodes: string[] }> {
    const user = await this.p.users.byId(userId);
    if (!user || user.state !== 'active' || !user.password_hash) throw errors.unauthenticated();
    if (!user.totp_pending_enc) throw errors.usage('start TOTP set-up first (POST /auth/mfa/totp)');
    await this.checkCurrentPassword(user, o.currentPassword, 'auth.mfa.totp.confirm', source);
    if (!(await this.p.mfa.verifyTotp(user, o.code, user.totp_pending_enc))) {
      await this.d.audit.recordNow({
        action: 'auth.mfa.totp.confirm',
        actor: `user:${userId}`,
        outcome: 'failure',
        reason: 'BAD_CODE',
        targets: { user: userId },
        source,
      });
      throw authErrors.invalidCode();
    }
    return this.d.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ mfa_method: 'totp', totp_secret_enc: user.totp_pending_enc, totp_pending_enc: null, totp_confirmed: 1 })
        .where('id', '=', userId)
        .execute();
      const codes = await this.p.mfa.newRecoveryCodes(trx, userId);
      if (user.pending_role) {
        // the role waiting for this factor takes effect now; every session and token starts afresh,
        // so its rights only ever come from a sign-in that passed the second factor
        await trx
          .updateTable('users')
          .set({ role: user.pending_role, pending_role: null })
          .where('id', '=', userId)
          .execute();
        await this.p.sessions.endAll(trx, userId, 'role-changed');
        await this.p.tokens.revokeAll(trx, userId, 'role-changed');
        await this.d.audit.record(trx, {
          action: 'user.role',
          actor: `user:${userId}`,
          outcome: 'success',
          reason: 'SECOND_FACTOR_SET',
          targets: { user: userId, role: user.pending_role, previous: user.role },
          source,
        });
      } else {
        // the other sessions were opened with the old factor
        await this.p.sessions.endAll(trx, userId, 'mfa-changed', currentSession);
      }
      await this.d.audit.record(trx, {
        action: 'auth.mfa.totp.confirm',
        actor: `user:${userId}`,
        outcome: 'success',
        targets: { user: userId },
        source,
      });
      return { recoveryCodes: codes };
    });
  }
}
