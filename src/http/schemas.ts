import { Type, type TSchema } from '@sinclair/typebox';

/**
 * Schema pieces every module's routes share (TypeBox; the response schemas are also Fastify's
 * serialisation filters, so nothing outside them reaches a client).
 */

/** The body of every error reply (./error-handler.ts): a stable code, a message in the caller's language, the request id. */
export const ErrorReply = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    requestId: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
});

/** `ErrorReply` for each of `statuses`, to spread into a route's `response` schema. */
export function errorReplies<S extends number>(...statuses: S[]): Record<S, typeof ErrorReply> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorReply])) as Record<S, typeof ErrorReply>;
}

/** `t` or null. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** A job run as the routes that start or list jobs show it (src/jobs). */
export const JobRunSchema = Type.Object(
  {
    id: Type.Integer(),
    job: Type.String(),
    trigger: Type.String(),
    actor: Type.String(),
    startedAt: Type.String(),
    endedAt: Nullable(Type.String()),
    durationMs: Type.Optional(Nullable(Type.Integer())),
    outcome: Type.String(),
    progress: Nullable(
      Type.Object({
        phase: Type.String(),
        done: Type.Optional(Type.Number()),
        total: Type.Optional(Type.Number()),
        percent: Type.Optional(Type.Number()),
        unit: Type.Optional(Type.String()),
      }),
    ),
    error: Nullable(Type.String()),
  },
  { additionalProperties: false },
);
