import { Type } from '@sinclair/typebox';

/** TypeBox schemas of the identity API. Response schemas are also the filter that keeps secrets out. */
export const Password = Type.String({ minLength: 1, maxLength: 1024 });
export const Username = Type.String({ minLength: 1, maxLength: 200 });

export const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  role: Type.String(),
  state: Type.String(),
  mfaMethod: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  lastLoginAt: Type.Union([Type.String(), Type.Null()]),
  lastSeenAt: Type.Union([Type.String(), Type.Null()]),
  /** a role given by an admin, waiting until the user sets up a second factor */
  pendingRole: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** the user's language ('en', 'fr'), or null to follow the browser */
  language: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

export const TokenSchema = Type.Object({
  id: Type.String(),
  userId: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});

export const SessionSchema = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  expiresAt: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean(),
});

export const LoginBody = Type.Object(
  {
    username: Username,
    password: Password,
    /** `session` (cookie, the console) or `token` (an API token, `coffre login`) */
    issue: Type.Optional(Type.Union([Type.Literal('session'), Type.Literal('token')])),
    tokenName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    scopes: Type.Optional(Type.Array(Type.String(), { maxItems: 32 })),
    ttlDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 365 })),
    /** a solved proof of work, when the previous answer was 429 PROOF_REQUIRED */
    proof: Type.Optional(
      Type.Object(
        {
          challenge: Type.String({ minLength: 1, maxLength: 64 }),
          nonce: Type.String({ minLength: 1, maxLength: 64 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const LoginReply = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('mfa_required')]),
  challenge: Type.Optional(Type.String()),
  method: Type.Optional(Type.String()),
  expiresAt: Type.Optional(Type.String()),
  /** method `totp-enrol`: the authenticator to add now, then answer the challenge with its code (docs/identity.md) */
  totp: Type.Optional(Type.Object({ secret: Type.String(), otpauthUrl: Type.String(), qrSvg: Type.String() })),
  user: Type.Optional(UserSchema),
  /** for cookie sessions: send it back as X-CSRF-Token on state-changing requests */
  csrfToken: Type.Optional(Type.String()),
  /** API token, shown once */
  token: Type.Optional(Type.String()),
  tokenInfo: Type.Optional(TokenSchema),
  /** shown once, at this sign-in: e.g. `mfa.locked` (someone entered too many wrong codes) */
  notices: Type.Optional(Type.Array(Type.Object({ kind: Type.String(), at: Type.String() }))),
});

export const TotpSchema = Type.Object({ secret: Type.String(), otpauthUrl: Type.String(), qrSvg: Type.String() });

export const Ok = Type.Object({ status: Type.Literal('ok') });
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
