import { Type, type Static } from '@sinclair/typebox';

/** Personal data (src/privacy/, docs/gdpr.md): how long each kind is kept before the daily purge. */
export const PrivacySection = Type.Object(
  {
    retention: Type.Object(
      {
        /** ended or expired sessions (address, user agent, times) are deleted this many days after they ended */
        sessionsDays: Type.Integer({ minimum: 1, maximum: 3650, default: 90 }),
        /** sign-in records: known addresses and devices not seen for this long, spent sign-in challenges and proofs, idle throttle counters */
        loginRecordsDays: Type.Integer({ minimum: 1, maximum: 3650, default: 90 }),
        /** resolved alerts (their texts may name people) and their delivered notices, this many days after they were resolved */
        alertsDays: Type.Integer({ minimum: 1, maximum: 3650, default: 365 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type PrivacyConfig = Static<typeof PrivacySection>;
