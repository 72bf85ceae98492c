import { Type, type Static } from '@sinclair/typebox';

/** Personal data (src/privacy/, docs/gdpr.md): how long each kind is kept before the daily purge. */
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

export const PrivacySection = Type.Object(
  {
    /** the controller and its data protection officer, as the record of processing activities names them (GDPR art. 30(1)(a)) */
    controller: Type.Object(
      {
        /** the organisation's legal name (default: site.name) */
        name: Type.Optional(Text(200)),
        /** postal address */
        address: Type.Optional(Text(500)),
        /** how to reach the controller about personal data (e-mail address or telephone) */
        contact: Type.Optional(Text(200)),
        /** the data protection officer's name */
        dpoName: Type.Optional(Text(200)),
        /** how to reach the data protection officer */
        dpoContact: Type.Optional(Text(200)),
      },
      { additionalProperties: false, default: {} },
    ),
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
