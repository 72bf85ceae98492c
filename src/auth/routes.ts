import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { LoginService, LoginResult } from './login.js';
import type { AccountService } from './accounts.js';
import type { UserDirectory } from './users.js';
import type { SessionRow, SessionStore } from './sessions.js';
import { ApiTokens } from './tokens.js';
import type { Auditor } from '../audit/types.js';
import type { AuthDb } from '../db/index.js';
import { userView } from './users.js';
import { LANGUAGES, type Language } from '../shared/i18n/index.js';
import { sourceOf } from './authenticator.js';
import {
  DEVICE_COOKIE,
  clearedSessionCookie,
  csrfTokenFor,
  deviceCookie,
  readCookie,
  sessionCookie,
} from './sessions.js';
import {
  IdParams,
  LoginBody,
  LoginReply,
  Ok,
  Password,
  SessionSchema,
  TokenSchema,
  TotpSchema,
  UserSchema,
  Username,
} from './schemas.js';
import { AppError, errors } from '../shared/errors.js';
import { authErrors } from './errors.js';
import { OPT_IN_SCOPES, ROLE_PERMISSIONS, isApplianceRole } from '../access/index.js';

export interface AuthRouteDeps {
  db: AuthDb;
  login: LoginService;
  accounts: AccountService;
  users: UserDirectory;
  sessions: SessionStore;
  tokens: ApiTokens;
  audit: Auditor;
  /** origin of http.publicUrl (browsers' public form posts must come from it) */
  publicOrigin: string | undefined;
  /** lifetime of the device cookie (auth.throttle.knownClientDays) */
  knownClientDays: number;
  /** a credential just issued passes a flooded address's gate (FailedAuthLimiter) */
  vouch: (credential: string) => void;
}

const actorOf = (req: FastifyRequest) => {
  const a = req.actor;
  if (!a?.userId) throw errors.forbidden();
  return { ...a, userId: a.userId };
};

/**
 * The identity API under /api/v1: sign-in, enrolment, reset, own account, users (admins).
 * Public routes are only those a signed-out user needs.
 */
/** a live session as its owner or an admin sees it; `current`: the caller's own */
const sessionView = (s: SessionRow, current: string | undefined) => ({
  id: s.id,
  createdAt: new Date(s.createdAt).toISOString(),
  lastSeenAt: new Date(s.lastSeenAt).toISOString(),
  expiresAt: new Date(s.expiresAt).toISOString(),
  ip: s.ip,
  userAgent: s.userAgent,
  current: s.id === current,
});

export function authRoutes(d: AuthRouteDeps): FastifyPluginAsync {
  return async (app) => {
    // Login CSRF: a browser may only post the public forms (sign-in, enrolment, reset) from our
    // own origin. Scripts (no Origin, no Sec-Fetch-Site) are not affected.
    app.addHook('onRequest', async (req) => {
      if (req.routeOptions.config?.public !== true || req.method === 'GET' || req.method === 'HEAD') return;
      const origin = req.headers.origin;
      if (req.headers['sec-fetch-site'] === 'cross-site' || (origin !== undefined && origin !== d.publicOrigin)) {
        await d.accounts.recordPublicRefusal(sourceOf(req), 'CSRF', req.routeOptions.url ?? 'unknown');
        throw authErrors.csrf();
      }
    });
    const reply = async (res: LoginResult, rep: FastifyReply) => {
      if (res.status === 'mfa_required')
        return {
          status: res.status,
          challenge: res.challenge,
          method: res.method,
          expiresAt: new Date(res.expiresAt).toISOString(),
          ...(res.totp ? { totp: res.totp } : {}),
        };
      const u = await d.users.byId(res.userId);
      const out: Record<string, unknown> = { status: 'ok', user: userView(u!) };
      const cookies: string[] = [];
      if (res.session) {
        d.vouch(res.session.secret);
        cookies.push(sessionCookie(res.session.secret));
        out.csrfToken = res.session.csrfToken;
      }
      if (res.device) cookies.push(deviceCookie(res.device, d.knownClientDays));
      if (cookies.length) void rep.header('set-cookie', cookies.length === 1 ? cookies[0] : cookies);
      if (res.notices?.length)
        out.notices = res.notices.map((n) => ({ kind: n.kind, at: new Date(n.at).toISOString() }));
      if (res.token) {
        d.vouch(res.token.token);
        out.token = res.token.token;
        out.tokenInfo = res.token.view;
      }
      return out;
    };
    /** revokes one token of a user, audited in the same transaction; false when there was none live */
    const revokeToken = (
      tokenId: string,
      by: string,
      userId: string,
      source: ReturnType<typeof sourceOf>,
      action = 'token.revoke',
    ) =>
      d.db.transaction().execute(async (trx) => {
        const ok = await d.tokens.revoke(trx, tokenId, by, userId);
        if (ok)
          await d.audit.record(trx, {
            action,
            actor: by,
            outcome: 'success',
            targets: { user: userId, token: tokenId },
            source,
          });
        return ok;
      });

    app.post(
      '/auth/login',
      { config: { public: true }, schema: { tags: ['auth'], body: LoginBody, response: { 200: LoginReply } } },
      async (req, rep) => {
        const b = req.body as typeof LoginBody.static;
        const purpose = b.issue ?? 'session';
        const token =
          purpose === 'token'
            ? { name: b.tokenName ?? 'coffre login', scopes: b.scopes, ttlDays: b.ttlDays }
            : undefined;
        const res = await d.login.passwordStep(
          {
            username: b.username,
            password: b.password,
            purpose,
            token,
            proof: b.proof,
            device: readCookie(req.headers.cookie, DEVICE_COOKIE),
          },
          sourceOf(req),
        );
        return reply(res, rep);
      },
    );

    app.post(
      '/auth/login/mfa',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            {
              challenge: Type.String({ minLength: 1, maxLength: 100 }),
              code: Type.String({ minLength: 1, maxLength: 32 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: LoginReply },
        },
      },
      async (req, rep) => {
        const b = req.body as { challenge: string; code: string };
        return reply(
          await d.login.mfaStep({ ...b, device: readCookie(req.headers.cookie, DEVICE_COOKIE) }, sourceOf(req)),
          rep,
        );
      },
    );

    app.post(
      '/auth/enrol',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            {
              token: Type.String({ minLength: 20, maxLength: 2000 }),
              password: Password,
              mfa: Type.Optional(Type.Union([Type.Literal('totp'), Type.Literal('email'), Type.Literal('sms')])),
              phone: Type.Optional(Type.String({ maxLength: 32 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              status: Type.Literal('ok'),
              username: Type.String(),
              totp: Type.Optional(TotpSchema),
              recoveryCodes: Type.Optional(Type.Array(Type.String())),
            }),
          },
        },
      },
      async (req) => {
        const b = req.body as { token: string; password: string; mfa?: 'totp' | 'email' | 'sms'; phone?: string };
        const r = await d.accounts.enrol(b, sourceOf(req));
        return {
          status: 'ok' as const,
          username: r.username,
          ...(r.totp ? { totp: r.totp } : {}),
          ...(r.recoveryCodes ? { recoveryCodes: r.recoveryCodes } : {}),
        };
      },
    );

    app.post(
      '/auth/password/forgot',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            { username: Type.Optional(Username), email: Type.Optional(Type.String({ maxLength: 254 })) },
            { additionalProperties: false },
          ),
          // delivery: how a link would reach the user ('none' when no mail server is configured);
          // the same for every account, so it says nothing about whether this one exists
          response: {
            202: Type.Object({
              status: Type.Literal('accepted'),
              delivery: Type.Union([Type.Literal('email'), Type.Literal('none')]),
            }),
          },
        },
      },
      async (req, rep) => {
        const b = req.body as { username?: string; email?: string };
        const src = sourceOf(req);
        if (!(await d.accounts.forgotAllowed(src))) {
          void rep.header('retry-after', '3600');
          throw new AppError('RATE_LIMITED', 'too many requests from this address; try again later', {
            httpStatus: 429,
          });
        }
        // R4: the same answer, at once, whether or not the account exists; the work happens after
        setImmediate(() => void d.accounts.forgot(b, src));
        return rep
          .code(202)
          .send({ status: 'accepted' as const, delivery: d.accounts.canMail ? ('email' as const) : ('none' as const) });
      },
    );

    app.post(
      '/auth/password/reset',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          // code: the user's own TOTP or recovery code, needed when an admin started the reset
          body: Type.Object(
            {
              token: Type.String({ minLength: 20, maxLength: 2000 }),
              password: Password,
              code: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
            },
            { additionalProperties: false },
          ),
          // totp and recoveryCodes: only after a two-admin recovery (the lost factor is replaced)
          response: {
            200: Type.Object({
              status: Type.Literal('ok'),
              totp: Type.Optional(TotpSchema),
              recoveryCodes: Type.Optional(Type.Array(Type.String())),
            }),
          },
        },
      },
      async (req) => {
        const r = await d.accounts.reset(req.body as { token: string; password: string; code?: string }, sourceOf(req));
        return { status: 'ok' as const, ...r };
      },
    );

    // ---- own account ----
    app.get(
      '/auth/me',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['auth'],
          response: {
            200: Type.Object({
              user: UserSchema,
              permissions: Type.Array(Type.String()),
              csrfToken: Type.Optional(Type.String()),
              sessionId: Type.Optional(Type.String()),
              tokenId: Type.Optional(Type.String()),
            }),
          },
        },
      },
      async (req) => {
        const a = actorOf(req);
        const u = await d.users.byId(a.userId);
        if (!u) throw errors.unauthenticated();
        const perms = isApplianceRole(u.role) ? [...ROLE_PERMISSIONS[u.role]] : [];
        return {
          user: userView(u),
          permissions: a.kind === 'token' ? perms.filter((p) => a.scopes?.includes(p)) : perms,
          ...(req.sessionSecret ? { csrfToken: csrfTokenFor(req.sessionSecret) } : {}),
          ...(a.sessionId ? { sessionId: a.sessionId } : {}),
          ...(a.kind === 'token' ? { tokenId: a.id.slice('token:'.length) } : {}),
        };
      },
    );

    // the user's language (docs/i18n.md): console, error messages and e-mails; null follows the browser
    app.put(
      '/auth/me/language',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            { language: Type.Union([...LANGUAGES.map((l) => Type.Literal(l)), Type.Null()]) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ language: Type.Union([Type.String(), Type.Null()]) }) },
        },
      },
      async (req) => {
        const a = actorOf(req);
        const { language } = req.body as { language: Language | null };
        await d.users.setLanguage(a.userId, language);
        return { language };
      },
    );

    app.post(
      '/auth/logout',
      { config: { permission: 'self' }, schema: { tags: ['auth'], response: { 200: Ok } } },
      async (req, rep) => {
        const a = actorOf(req);
        if (a.sessionId)
          await d.accounts.endSession(a.userId, a.sessionId, a.id, sourceOf(req), 'logout', 'auth.logout');
        // S6: signing out with a bearer token revokes that token
        if (a.kind === 'token')
          await revokeToken(a.id.slice('token:'.length), a.id, a.userId, sourceOf(req), 'auth.logout');
        void rep.header('set-cookie', clearedSessionCookie());
        return { status: 'ok' as const };
      },
    );

    app.get(
      '/auth/sessions',
      {
        config: { permission: 'self' },
        schema: { tags: ['auth'], response: { 200: Type.Object({ sessions: Type.Array(SessionSchema) }) } },
      },
      async (req) => {
        const a = actorOf(req);
        const rows = await d.sessions.listLive(a.userId);
        return {
          sessions: rows.map((s) => sessionView(s, a.sessionId)),
        };
      },
    );

    app.delete(
      '/auth/sessions/:id',
      { config: { permission: 'self' }, schema: { tags: ['auth'], params: IdParams, response: { 200: Ok } } },
      async (req) => {
        const a = actorOf(req);
        const ok = await d.accounts.endSession(a.userId, (req.params as { id: string }).id, a.id, sourceOf(req));
        if (!ok) throw errors.notFound('session');
        return { status: 'ok' as const };
      },
    );

    app.post(
      '/auth/sessions/end-others',
      {
        config: { permission: 'self' },
        schema: { tags: ['auth'], response: { 200: Type.Object({ ended: Type.Integer() }) } },
      },
      async (req) => {
        const a = actorOf(req);
        return { ended: await d.accounts.endSessions(a.userId, a.id, sourceOf(req), a.sessionId) };
      },
    );

    app.post(
      '/auth/password',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['auth'],
          // S6: the user's API tokens are revoked unless keepTokens is true
          body: Type.Object(
            {
              currentPassword: Password,
              newPassword: Password,
              endOtherSessions: Type.Optional(Type.Boolean()),
              keepTokens: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              status: Type.Literal('ok'),
              sessionsEnded: Type.Integer(),
              tokensRevoked: Type.Integer(),
            }),
          },
        },
      },
      async (req) => {
        const a = actorOf(req);
        if (a.kind === 'token' && !a.scopes?.includes('password:change')) {
          throw new AppError(
            'FORBIDDEN',
            'this API token cannot change the password (it needs the password:change scope)',
            { httpStatus: 403 },
          );
        }
        const b = req.body as {
          currentPassword: string;
          newPassword: string;
          endOtherSessions?: boolean;
          keepTokens?: boolean;
        };
        const r = await d.accounts.changePassword(
          a.userId,
          {
            currentPassword: b.currentPassword,
            newPassword: b.newPassword,
            endOtherSessions: b.endOtherSessions ?? true,
            keepTokens: b.keepTokens,
          },
          a.sessionId,
          sourceOf(req),
        );
        return { status: 'ok' as const, sessionsEnded: r.sessionsEnded, tokensRevoked: r.tokensRevoked };
      },
    );

    app.post(
      '/auth/mfa/totp',
      { config: { permission: 'self' }, schema: { tags: ['auth'], response: { 200: TotpSchema } } },
      async (req) => {
        const a = actorOf(req);
        if (a.kind === 'token') throw errors.forbidden();
        return d.accounts.startTotp(a.userId, sourceOf(req));
      },
    );

    app.post(
      '/auth/mfa/totp/confirm',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            { code: Type.String({ pattern: '^[0-9]{6}$' }), currentPassword: Password },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ recoveryCodes: Type.Array(Type.String()) }) },
        },
      },
      async (req) => {
        const a = actorOf(req);
        if (a.kind === 'token') throw errors.forbidden();
        return d.accounts.confirmTotp(
          a.userId,
          req.body as { code: string; currentPassword: string },
          a.sessionId,
          sourceOf(req),
        );
      },
    );

    // ---- own API tokens ----
    app.get(
      '/auth/tokens',
      {
        config: { permission: 'self' },
        schema: { tags: ['auth'], response: { 200: Type.Object({ tokens: Type.Array(TokenSchema) }) } },
      },
      async (req) => {
        const a = actorOf(req);
        await d.audit.recordNow({
          action: 'token.list',
          actor: a.id,
          outcome: 'success',
          targets: { user: a.userId },
          source: sourceOf(req),
        });
        return { tokens: await d.tokens.list(a.userId) };
      },
    );

    app.post(
      '/auth/tokens',
      {
        config: { permission: 'self' },
        schema: {
          tags: ['auth'],
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 100 }),
              scopes: Type.Optional(Type.Array(Type.String(), { maxItems: 32 })),
              ttlDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 365 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ token: Type.String(), tokenInfo: TokenSchema }) },
        },
      },
      async (req, rep) => {
        const a = actorOf(req);
        const b = req.body as { name: string; scopes?: string[]; ttlDays?: number };
        const u = await d.users.byId(a.userId);
        const own = u && isApplianceRole(u.role) ? [...ROLE_PERMISSIONS[u.role]] : [];
        // a token never holds more than its creator (a token-made token: no more than that token);
        // opt-in scopes (password:change) only when named
        const allowed = a.kind === 'token' ? own.filter((p) => a.scopes?.includes(p)) : own;
        const optIn = OPT_IN_SCOPES.filter((p) => a.kind !== 'token' || a.scopes?.includes(p));
        const scopes = ApiTokens.grant(allowed, b.scopes, optIn);
        const t = await d.db.transaction().execute(async (trx) => {
          const t = await d.tokens.create(trx, a.userId, { name: b.name, scopes, ttlDays: b.ttlDays });
          await d.audit.record(trx, {
            action: 'token.create',
            actor: a.id,
            outcome: 'success',
            targets: { user: a.userId, token: t.view.id },
            source: sourceOf(req),
          });
          return t;
        });
        return rep.code(201).send({ token: t.token, tokenInfo: t.view });
      },
    );

    app.delete(
      '/auth/tokens/:id',
      { config: { permission: 'self' }, schema: { tags: ['auth'], params: IdParams, response: { 200: Ok } } },
      async (req) => {
        const a = actorOf(req);
        if (!(await revokeToken((req.params as { id: string }).id, a.id, a.userId, sourceOf(req))))
          throw errors.notFound('token');
        return { status: 'ok' as const };
      },
    );

    // ---- users (admins) ----
    // L4: every read of the user directory and of token lists is recorded (fail closed: audited first)
    app.get(
      '/users',
      {
        config: { permission: 'users:read' },
        schema: { tags: ['users'], response: { 200: Type.Object({ users: Type.Array(UserSchema) }) } },
      },
      async (req) => {
        await d.audit.recordNow({
          action: 'user.list',
          actor: req.actor!.id,
          outcome: 'success',
          source: sourceOf(req),
        });
        return { users: (await d.users.list()).map(userView) };
      },
    );

    app.post(
      '/users',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          // language: the invitee's, for their e-mails and console (docs/i18n.md)
          body: Type.Object(
            {
              username: Username,
              email: Type.String({ minLength: 3, maxLength: 254 }),
              role: Type.String(),
              phone: Type.Optional(Type.String({ maxLength: 32 })),
              language: Type.Optional(Type.Union(LANGUAGES.map((l) => Type.Literal(l)))),
            },
            { additionalProperties: false },
          ),
          // the link goes to the user by mail; the admin sees it only when no mail server is configured
          response: {
            201: Type.Object({
              user: UserSchema,
              enrolUrl: Type.Optional(Type.String()),
              expiresAt: Type.String(),
              mailed: Type.Boolean(),
            }),
          },
        },
      },
      async (req, rep) => {
        const b = req.body as { username: string; email: string; role: string; phone?: string; language?: Language };
        const r = await d.accounts.invite(b, req.actor!.id, sourceOf(req), true);
        return rep.code(201).send({
          user: userView(r.user),
          ...(r.mailed ? {} : { enrolUrl: r.enrolUrl }),
          expiresAt: new Date(r.expiresAt).toISOString(),
          mailed: r.mailed,
        });
      },
    );

    // like the invitation: the new link goes by mail when a mail server is configured, and is then not in the reply
    app.post(
      '/users/:id/invite',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: {
            200: Type.Object({
              enrolUrl: Type.Optional(Type.String()),
              expiresAt: Type.String(),
              mailed: Type.Boolean(),
            }),
          },
        },
      },
      async (req) => {
        const r = await d.accounts.reinvite((req.params as { id: string }).id, req.actor!.id, sourceOf(req), true);
        return {
          ...(r.mailed ? {} : { enrolUrl: r.enrolUrl }),
          expiresAt: new Date(r.expiresAt).toISOString(),
          mailed: r.mailed,
        };
      },
    );

    // an admin-started reset: the link goes by mail, or to the admin but usable only with the user's own second factor
    app.post(
      '/users/:id/reset',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: {
            200: Type.Object({
              mailed: Type.Boolean(),
              resetUrl: Type.Optional(Type.String()),
              expiresAt: Type.String(),
              codeRequired: Type.Boolean(),
            }),
          },
        },
      },
      async (req) => {
        const r = await d.accounts.adminReset((req.params as { id: string }).id, req.actor!.id, sourceOf(req));
        return {
          mailed: r.mailed,
          ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
          expiresAt: new Date(r.expiresAt).toISOString(),
          codeRequired: r.codeRequired,
        };
      },
    );

    // lost password and second factor: one admin requests, a different admin approves (each audited)
    app.post(
      '/users/:id/recovery',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: {
            200: Type.Object({
              status: Type.Union([Type.Literal('requested'), Type.Literal('approved')]),
              mailed: Type.Optional(Type.Boolean()),
              resetUrl: Type.Optional(Type.String()),
              expiresAt: Type.Optional(Type.String()),
            }),
          },
        },
      },
      async (req) => {
        const r = await d.accounts.recover((req.params as { id: string }).id, req.actor!.id, sourceOf(req));
        if (r.status === 'requested') return r;
        return {
          status: r.status,
          mailed: r.mailed,
          ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
          expiresAt: new Date(r.expiresAt).toISOString(),
        };
      },
    );

    app.post(
      '/users/:id/disable',
      { config: { permission: 'users:manage' }, schema: { tags: ['users'], params: IdParams, response: { 200: Ok } } },
      async (req) => {
        await d.accounts.setState((req.params as { id: string }).id, 'disabled', req.actor!.id, sourceOf(req));
        return { status: 'ok' as const };
      },
    );

    app.post(
      '/users/:id/enable',
      { config: { permission: 'users:manage' }, schema: { tags: ['users'], params: IdParams, response: { 200: Ok } } },
      async (req) => {
        await d.accounts.setState((req.params as { id: string }).id, 'active', req.actor!.id, sourceOf(req));
        return { status: 'ok' as const };
      },
    );

    app.put(
      '/users/:id/role',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          body: Type.Object({ role: Type.String() }, { additionalProperties: false }),
          // pendingRole: the role asked for, waiting until the user sets up a second factor (role stays the current one)
          response: {
            200: Type.Object({
              status: Type.Literal('ok'),
              role: Type.String(),
              pendingRole: Type.Union([Type.String(), Type.Null()]),
            }),
          },
        },
      },
      async (req) => {
        const id = (req.params as { id: string }).id;
        if (req.actor!.userId === id)
          throw new AppError('SELF_ROLE', 'you cannot change your own role', { httpStatus: 409 });
        const r = await d.accounts.setRole(id, (req.body as { role: string }).role, req.actor!.id, sourceOf(req));
        return { status: 'ok' as const, ...r };
      },
    );

    // S6: an admin's "end sessions" also revokes the user's API tokens
    app.post(
      '/users/:id/sessions/end',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: { 200: Type.Object({ ended: Type.Integer(), tokensRevoked: Type.Integer() }) },
        },
      },
      async (req) => {
        const id = (req.params as { id: string }).id;
        if (!(await d.users.byId(id))) throw errors.notFound('user');
        return d.accounts.endAccess(id, req.actor!.id, sourceOf(req));
      },
    );

    // an admin's user page: the person's live sessions (device, address, last seen); audited like token lists
    app.get(
      '/users/:id/sessions',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: { 200: Type.Object({ sessions: Type.Array(SessionSchema) }) },
        },
      },
      async (req) => {
        const id = (req.params as { id: string }).id;
        await d.audit.recordNow({
          action: 'session.list',
          actor: req.actor!.id,
          outcome: 'success',
          targets: { user: id.slice(0, 128) },
          source: sourceOf(req),
        });
        const rows = await d.sessions.listLive(id);
        return { sessions: rows.map((s) => sessionView(s, req.actor!.sessionId)) };
      },
    );

    // one session of a person, ended by an admin (S4): that cookie gets 401 from now on
    app.delete(
      '/users/:id/sessions/:sessionId',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: Type.Object({
            id: Type.String({ minLength: 1, maxLength: 100 }),
            sessionId: Type.String({ minLength: 1, maxLength: 100 }),
          }),
          response: { 200: Ok },
        },
      },
      async (req) => {
        const p = req.params as { id: string; sessionId: string };
        const ok = await d.accounts.endSession(p.id, p.sessionId, req.actor!.id, sourceOf(req), 'ended-by-admin');
        if (!ok) throw errors.notFound('session');
        return { status: 'ok' as const };
      },
    );

    app.get(
      '/users/:id/tokens',
      {
        config: { permission: 'users:read' },
        schema: {
          tags: ['users'],
          params: IdParams,
          response: { 200: Type.Object({ tokens: Type.Array(TokenSchema) }) },
        },
      },
      async (req) => {
        const id = (req.params as { id: string }).id;
        await d.audit.recordNow({
          action: 'token.list',
          actor: req.actor!.id,
          outcome: 'success',
          targets: { user: id.slice(0, 128) },
          source: sourceOf(req),
        });
        return { tokens: await d.tokens.list(id) };
      },
    );

    app.delete(
      '/users/:id/tokens/:tokenId',
      {
        config: { permission: 'users:manage' },
        schema: {
          tags: ['users'],
          params: Type.Object({ id: Type.String(), tokenId: Type.String() }),
          response: { 200: Ok },
        },
      },
      async (req) => {
        const p = req.params as { id: string; tokenId: string };
        if (!(await revokeToken(p.tokenId, req.actor!.id, p.id, sourceOf(req)))) throw errors.notFound('token');
        return { status: 'ok' as const };
      },
    );
  };
}
