import { Type, type Static } from '@sinclair/typebox';

export const LoggingSection = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type LoggingConfig = Static<typeof LoggingSection>;
