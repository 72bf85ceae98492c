import { Type, type Static } from '@sinclair/typebox';

/** Proofs checked offline: seals, receipts, timestamps (docs/proofs.md). */
export const SealsSection = Type.Object(
  {
    /** RFC 3161 time-stamping authorities (docs/proofs.md "Timestamps") */
    tsa: Type.Object(
      {
        /** TSA endpoints (HTTP POST, application/timestamp-query), tried in order; none: no timestamps */
        urls: Type.Array(Type.String({ pattern: '^https?://' }), { default: [] }),
        /** PEM file of the TSA certificate(s) or their CA(s): a token is accepted only if its signer is one of them or chains to one (required with urls) */
        caFile: Type.Optional(Type.String()),
        /** deadline of one request to one TSA */
        timeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
        /** how often items left `pending` (TSA unreachable) are tried again */
        retryMs: Type.Integer({ minimum: 1000, default: 60_000 }),
        /** an alert is raised when an item has waited this long for its timestamp */
        alertAfterMs: Type.Integer({ minimum: 1000, default: 3_600_000 }),
        /** TSA policy OID to ask for (the TSA's default when absent) */
        policy: Type.Optional(Type.String({ pattern: '^\\d+(\\.\\d+)+$' })),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);
export type SealsConfig = Static<typeof SealsSection>;
export type TsaConfig = SealsConfig['tsa'];
