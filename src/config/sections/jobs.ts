import { Type, type Static } from '@sinclair/typebox';

export const JobsSection = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    /** a lease not renewed for this long is considered abandoned (crashed holder) */
    leaseTtlMs: Type.Integer({ minimum: 1000, default: 120_000 }),
    /** per job name: cron expression (appliance time zone; five fields, or six with seconds first) overriding the job's default */
    schedules: Type.Record(Type.String(), Type.String(), { default: {} }),
  },
  { additionalProperties: false, default: {} },
);
export type JobsConfig = Static<typeof JobsSection>;
