import { Type, type Static } from '@sinclair/typebox';

/** Where the appliance stands: backup targets must be in the same jurisdiction and far enough away. */
export const SiteSection = Type.Object(
  {
    /** ISO 3166-1 alpha-2 code, e.g. FR */
    jurisdiction: Type.String({ pattern: '^[A-Z]{2}$', default: 'FR' }),
    lat: Type.Number({ minimum: -90, maximum: 90, default: 48.8566 }),
    lon: Type.Number({ minimum: -180, maximum: 180, default: 2.3522 }),
    /** IANA time zone used for schedules and weekday slots */
    timeZone: Type.String({ default: 'UTC' }),
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: false, default: {} },
);
export type SiteConfig = Static<typeof SiteSection>;
