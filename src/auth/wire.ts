import type { FastifyPluginAsync } from 'fastify';
import type { AuthDb } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { FieldCipher, KeyProvider } from '../keys/types.js';
import { macCreating } from '../keys/index.js';
import type { Auditor } from '../audit/types.js';
import type { Alerter } from '../monitoring/types.js';
import type { AuthConfig } from '../config/sections/auth.js';
import type { MailConfig } from '../config/sections/mail.js';
import type { AuthDeps } from './deps.js';
import { PasswordHasher } from './passwords/hasher.js';
import { LoginThrottle } from './throttle.js';
import { SessionStore } from './sessions.js';
import { SecondFactor } from './mfa.js';
import { ApiTokens } from './tokens.js';
import { Links } from './links.js';
import { UserDirectory } from './users.js';
import { LoginService } from './login.js';
import { AccountService } from './accounts.js';
import { SessionAuthenticator } from './authenticator.js';
import { authRoutes } from './routes.js';
import { FailedAuthLimiter } from './flood.js';
import { ProofChallenges } from './proof-challenges.js';
import { RefusalTally } from './refusals.js';

/** the HSM HMAC key behind the proof-of-work challenges */
const PROOF_KEY = 'coffre-auth-proof';
/** the HSM HMAC key that peppers password hashes (never leaves the HSM; destroying it voids every password) */
export const PEPPER_KEY = 'coffre-password-pepper';
import { httpSmsSender, smtpSender, type MailSender, type SmsSender } from './messaging.js';
import { Policy, Workspaces, AccessReviews, type PickerDirectory, type WorkspaceLimits } from '../access/index.js';
import { workspaceRoutes, reviewRoutes } from '../access/routes.js';
import type { JobDefinition } from '../jobs/index.js';
import { notices } from './notices.js';

export interface IdentityOptions {
  db: AuthDb;
  clock: Clock;
  log: Logger;
  fields: FieldCipher;
  /** the HSM: the password pepper and the key of the proof-of-work challenges (docs/brute-force.md) */
  keys: Pick<KeyProvider, 'mac' | 'createMacKey'>;
  audit: Auditor;
  /** security events (brute force); when absent they are logged at warn level */
  alerts?: Alerter | undefined;
  auth: AuthConfig;
  mail: MailConfig;
  /** config http.publicUrl: links and the CSRF origin check use it, never the Host header */
  publicUrl: string;
  organisation?: string | undefined;
  /** default quota and per-user workspace limit (from the vault section) */
  workspaceLimits?: WorkspaceLimits | undefined;
  /** tests may inject senders (real SMTP / HTTP receivers behind them) */
  mailSender?: MailSender | undefined;
  smsSender?: SmsSender | undefined;
}

export interface Identity {
  users: UserDirectory;
  accounts: AccountService;
  login: LoginService;
  sessions: SessionStore;
  tokens: ApiTokens;
  hasher: PasswordHasher;
  policy: Policy;
  workspaces: Workspaces;
  authenticator: SessionAuthenticator;
  reviews: AccessReviews;
  /** scheduled jobs (access reviews and reminders) */
  jobs: JobDefinition[];
  /** API plugins for /api/v1 */
  api: FastifyPluginAsync[];
  /** records the last aggregated refusals (call before the audit trail closes) */
  close(): Promise<void>;
}

/** logs security events when no alert channel is wired */
export const logAlerter = (log: Logger): Alerter => ({
  raise: async (a) =>
    void log.warn({ event: 'alert', kind: a.kind, severity: a.severity, targets: a.targets }, a.message),
});

/** Builds the identity and access modules from their configuration (composition for main.ts, init and the CLI). */
export function wireIdentity(o: IdentityOptions): Identity {
  const d: AuthDeps = {
    db: o.db,
    clock: o.clock,
    log: o.log,
    fields: o.fields,
    audit: o.audit,
    alerts: o.alerts ?? logAlerter(o.log),
    config: o.auth,
    publicUrl: o.publicUrl,
    organisation: o.organisation,
  };
  // the pepper: one HMAC in the HSM per hash or verification (docs/formats.md "Password hashes")
  const hasher = new PasswordHasher(o.auth.argon2, (password) =>
    macCreating(o.keys, PEPPER_KEY, Buffer.from(password, 'utf8')),
  );
  const throttle = new LoginThrottle(o.db, o.clock, o.auth.throttle);
  const sessions = new SessionStore(o.db, o.clock, o.auth.sessions);
  const mfa = new SecondFactor(o.db, o.clock, o.fields, o.auth.mfa);
  const tokens = new ApiTokens(o.db, o.clock, o.auth.tokens);
  const links = new Links(o.clock, o.publicUrl, o.auth.links.ttlHours);
  const users = new UserDirectory(o.db, o.fields);
  const mail = o.mailSender ?? (o.mail.smtp ? smtpSender(o.mail.smtp) : undefined);
  const sms = o.smsSender ?? (o.mail.sms ? httpSmsSender(o.mail.sms) : undefined);
  const proofs = new ProofChallenges(o.db, o.clock, () =>
    macCreating(o.keys, PROOF_KEY, Buffer.from('coffre sign-in proof challenges v1')),
  );
  const refusals = new RefusalTally({ clock: o.clock, audit: o.audit, log: o.log });
  const login = new LoginService(d, { users, hasher, throttle, sessions, mfa, tokens, proofs, refusals, mail, sms });
  const accounts = new AccountService(d, { users, hasher, throttle, sessions, mfa, tokens, links, mail, sms });
  const policy = new Policy(o.db);
  const directory: PickerDirectory = {
    findExact: async (text) => {
      const byName = await users.byUsername(text);
      if (byName) return byName.id;
      if (!text.includes('@')) return undefined;
      const byMail = await users.byEmail(text);
      // an address shared by several accounts names nobody
      return byMail.length === 1 ? byMail[0]!.id : undefined;
    },
    allowLookup: (userId) => throttle.take(`lookup:${userId}`, o.auth.directory.lookupsPerHour, 3_600_000),
  };
  const workspaces = new Workspaces({
    db: o.db,
    clock: o.clock,
    fields: o.fields,
    audit: o.audit,
    policy,
    limits: o.workspaceLimits,
    directory,
  });
  const publicOrigin = (() => {
    try {
      return new URL(o.publicUrl).origin;
    } catch {
      return undefined;
    }
  })();
  const limiter = new FailedAuthLimiter({
    clock: o.clock,
    audit: o.audit,
    alerts: d.alerts,
    log: o.log,
    cfg: o.auth.throttle,
  });
  const authenticator = new SessionAuthenticator({
    db: o.db,
    clock: o.clock,
    sessions,
    tokens,
    policy,
    audit: o.audit,
    publicOrigin,
    limiter,
  });
  const reviews = new AccessReviews({
    db: o.db,
    clock: o.clock,
    log: o.log,
    audit: o.audit,
    alerts: d.alerts,
    policy,
    cfg: o.auth.reviews,
    workspaceName: (id) => workspaces.nameOf(id),
    effects: {
      removeMember: (actor, ws, userId, source) =>
        workspaces.removeMember(actor, ws, userId, source, 'access.review.revoke'),
      downgradeRole: async (userId, by, source) => {
        const u = await users.byId(userId);
        if (u?.role === 'member') await accounts.setState(userId, 'disabled', by, source);
        else await accounts.setRole(userId, 'member', by, source);
      },
      revokeToken: async (tokenId, by, source) => {
        await o.db.transaction().execute(async (trx) => {
          if (await tokens.revoke(trx, tokenId, by))
            await o.audit.record(trx, {
              action: 'token.revoke',
              actor: by,
              outcome: 'success',
              reason: 'ACCESS_REVIEW',
              targets: { token: tokenId },
              source,
            });
        });
      },
    },
    notify: mail
      ? async (userId, due) => {
          const u = await users.byId(userId);
          if (!u || u.state !== 'active') return;
          const n = notices.reviewReminder(u, due);
          await mail.send({ to: await users.email(u), subject: n.subject, text: n.text });
        }
      : undefined,
  });
  const api = [
    authRoutes({
      db: o.db,
      login,
      accounts,
      users,
      sessions,
      tokens,
      audit: o.audit,
      publicOrigin,
      knownClientDays: o.auth.throttle.knownClientDays,
      vouch: (c) => limiter.vouch(c),
    }),
    workspaceRoutes(workspaces),
    reviewRoutes(reviews),
  ];
  return {
    users,
    accounts,
    login,
    sessions,
    tokens,
    hasher,
    policy,
    workspaces,
    authenticator,
    reviews,
    jobs: reviews.jobs(),
    api,
    close: async () => {
      await refusals.close();
      await limiter.close();
    },
  };
}
