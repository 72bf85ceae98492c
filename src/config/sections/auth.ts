import { Type, type Static } from '@sinclair/typebox';

/**
 * Identity and access: password policy, argon2id cost, sessions, second factor, links,
 * API tokens, brute-force throttling and access reviews. Minimums (docs/identity.md):
 * the schema refuses anything weaker.
 */
export const AuthSection = Type.Object(
  {
    password: Type.Object(
      {
        /** P2: at least 10 code points; may be raised */
        minLength: Type.Integer({ minimum: 10, maximum: 128, default: 10 }),
        /** P3: how many of the 4 classes (lower, upper, digit, other) a password must use */
        minClasses: Type.Integer({ minimum: 0, maximum: 4, default: 3 }),
        /** P4: extra context words (organisation, product…) refused inside passwords */
        contextWords: Type.Array(Type.String({ minLength: 3 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    argon2: Type.Object(
      {
        /** P5: KiB of memory per hash (≥ 19 MiB) */
        memoryKiB: Type.Integer({ minimum: 19_456, maximum: 4_194_304, default: 19_456 }),
        timeCost: Type.Integer({ minimum: 2, maximum: 20, default: 2 }),
        parallelism: Type.Literal(1, { default: 1 }),
        /** hashes computed at once; more wait (a login storm cannot starve the appliance) */
        maxConcurrent: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
        /** of those, slots only sign-ins from a known device or address may use (at most maxConcurrent - 1): they never wait for a guesser's hash */
        knownClientSlots: Type.Integer({ minimum: 0, maximum: 63, default: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    sessions: Type.Object(
      {
        idleTimeoutMinutes: Type.Integer({ minimum: 1, maximum: 24 * 60, default: 30 }),
        absoluteTimeoutHours: Type.Integer({ minimum: 1, maximum: 24 * 7, default: 12 }),
      },
      { additionalProperties: false, default: {} },
    ),
    mfa: Type.Object(
      {
        /** M4: appliance roles that must use a second factor */
        /** M4: every role by default; removing one is shown as a warning in the console */
        requiredRoles: Type.Array(Type.String(), {
          default: ['admin', 'backup-operator', 'auditor', 'member', 'records-manager'],
        }),
        challengeTtlSeconds: Type.Integer({ minimum: 30, maximum: 900, default: 300 }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 5 }),
        issuer: Type.String({ default: 'Coffre' }),
        /** M5: wrong codes per user (all challenges together) per 15 minutes before the factor locks */
        userFailuresPer15Min: Type.Integer({ minimum: 3, maximum: 50, default: 10 }),
        lockMinutes: Type.Integer({ minimum: 1, maximum: 24 * 60, default: 15 }),
        /** M5: e-mail/SMS codes sent per user, and per destination, per 15 minutes */
        codesPer15Min: Type.Integer({ minimum: 1, maximum: 50, default: 5 }),
      },
      { additionalProperties: false, default: {} },
    ),
    links: Type.Object(
      {
        /** R2: enrolment and reset links expire after this many hours */
        ttlHours: Type.Integer({ minimum: 1, maximum: 24, default: 24 }),
        /** R4: reset requests answered per account per hour (more are silently dropped) */
        resetPerAccountPerHour: Type.Integer({ minimum: 1, default: 3 }),
        /** R4: reset requests per source address per hour (more get 429) */
        resetPerAddressPerHour: Type.Integer({ minimum: 1, default: 20 }),
      },
      { additionalProperties: false, default: {} },
    ),
    tokens: Type.Object(
      {
        defaultTtlDays: Type.Integer({ minimum: 1, maximum: 365, default: 30 }),
        maxTtlDays: Type.Integer({ minimum: 1, maximum: 365, default: 365 }),
      },
      { additionalProperties: false, default: {} },
    ),
    throttle: Type.Object(
      {
        /** B1: failures per (account, source address) before that pair must solve a proof of work */
        freeFailures: Type.Integer({ minimum: 1, default: 3 }),
        /** no longer used (sign-in friction replaced the back-off refusal); kept so existing files load */
        maxBackoffSeconds: Type.Integer({ minimum: 1, default: 900 }),
        /** B1/B3: failures per account per hour (all addresses) after which the account is under attack: unknown clients must solve a proof of work */
        accountFailuresPerHour: Type.Integer({ minimum: 1, maximum: 100, default: 100 }),
        /** B2: failures from one address (IPv4 /32, IPv6 /64) per window after which it must solve a proof of work (except for accounts it is known for) */
        addressFailures: Type.Integer({ minimum: 1, default: 30 }),
        addressWindowSeconds: Type.Integer({ minimum: 1, default: 900 }),
        /** alert `auth.bruteforce` when an account or an address reaches this many failures */
        alertAfter: Type.Integer({ minimum: 1, default: 20 }),
        /** proof of work: leading zero bits of SHA-256(challenge ":" nonce) at the first level, and the most ever asked */
        proofBits: Type.Integer({ minimum: 8, maximum: 24, default: 16 }),
        maxProofBits: Type.Integer({ minimum: 8, maximum: 24, default: 21 }),
        /** an address or device stays known this many days after the user's last sign-in from it */
        knownClientDays: Type.Integer({ minimum: 1, maximum: 400, default: 90 }),
        /** wrong current passwords (password change, TOTP set-up) per user per 15 minutes before 429 */
        currentPasswordFailuresPer15Min: Type.Integer({ minimum: 1, maximum: 50, default: 5 }),
        /** B5: failed bearer/cookie authentications per address per minute before 429 (checked in memory, before any database work) */
        badCredentialsPerMinute: Type.Integer({ minimum: 1, default: 30 }),
        /** alert `auth.flood` when failed authentications from all addresses reach this many in a minute */
        floodAlertPerMinute: Type.Integer({ minimum: 1, default: 600 }),
        /** a refusal that repeats (a sign-in sent again without the proof of work it was just asked for, a bad token or cookie from an address over its budget) is answered after this delay: the client waits, the server does no work meanwhile */
        refusalDelayMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 250 }),
      },
      { additionalProperties: false, default: {} },
    ),
    directory: Type.Object(
      {
        /** Z7: member-picker look-ups (exact user name or e-mail) one person may make per hour */
        lookupsPerHour: Type.Integer({ minimum: 1, maximum: 1000, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    reviews: Type.Object(
      {
        /** cron (appliance time zone): quarterly by default */
        schedule: Type.String({ default: '0 6 1 1,4,7,10 *' }),
        dueDays: Type.Integer({ minimum: 1, default: 14 }),
        /** Z4: accounts idle longer than this are flagged */
        idleDays: Type.Integer({ minimum: 1, default: 90 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type AuthConfig = Static<typeof AuthSection>;
