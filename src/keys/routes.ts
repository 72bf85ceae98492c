import { ErrorReply, errorReplies, Nullable, JobRunSchema } from '../http/index.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { PERMISSIONS } from '../access/index.js';
import type { Auditor } from '../audit/types.js';
import { auditSource } from '../audit/index.js';
import type { KeysConfig } from '../config/sections/keys.js';
import type { Scheduler } from '../jobs/index.js';
import type { JobRunRecord } from '../jobs/types.js';
import { AppError, errors } from '../shared/errors.js';
import type { Keys } from './index.js';
import { keyStatus } from './status.js';

/**
 * Key status and rotation for the console (IT admins; auditors read the status): what
 * `coffre keys status` prints, and `keys.rotate` started as a background job whose run record
 * (progress: re-wrapped keys of all) is polled. While the HSM is down, status answers 503
 * KEYS_UNAVAILABLE like everything else that needs it. Reading the status is audited (it is an
 * admin's look at the key material's state), so is starting a rotation and how it ended.
 */
export interface KeysRoutesOptions {
  keys: Keys;
  config: KeysConfig;
  scheduler: Scheduler;
  audit: Auditor;
}

const tags = ['keys'];
const errs = errorReplies(401, 403, 404, 409, 503);

const Attributes = Type.Object({
  label: Type.String(),
  keyType: Type.String(),
  valueLen: Type.Integer(),
  extractable: Type.Boolean(),
  sensitive: Type.Boolean(),
  neverExtractable: Type.Boolean(),
  alwaysSensitive: Type.Boolean(),
  local: Type.Boolean(),
  modifiable: Type.Boolean(),
  wrap: Type.Boolean(),
  unwrap: Type.Boolean(),
  encrypt: Type.Boolean(),
  decrypt: Type.Boolean(),
  sign: Type.Boolean(),
  verify: Type.Boolean(),
  derive: Type.Boolean(),
  mechanism: Type.String(),
});
const Version = Type.Object({
  version: Type.Integer(),
  label: Type.String(),
  state: Type.String(),
  inHsm: Type.Boolean(),
  wrappedKeys: Type.Integer(),
  createdAt: Nullable(Type.String()),
  retiredAt: Nullable(Type.String()),
  destroyAfter: Nullable(Type.String()),
  destroyedAt: Nullable(Type.String()),
  attributes: Type.Optional(Attributes),
});
export const KeyStatusReply = Type.Object({
  up: Type.Boolean(),
  module: Type.String(),
  slot: Type.Integer(),
  token: Type.Object({
    label: Type.String(),
    serial: Type.String(),
    manufacturer: Type.String(),
    model: Type.String(),
  }),
  kek: Type.Object({ labelPrefix: Type.String(), currentVersion: Type.Integer(), currentLabel: Type.String() }),
  versions: Type.Array(Version),
  latencyMs: Type.Number(),
  retiredKekGraceDays: Type.Number(),
  /** present when the keys are in the embedded SoftHSM2 token: evaluation only (src/keys/embedded.ts) */
  embeddedToken: Type.Optional(
    Type.Object({
      evaluationOnly: Type.Literal(true),
      tokenConfig: Nullable(Type.String()),
      pinStore: Type.Union([Type.Literal('file'), Type.Literal('systemd-credential')]),
      message: Type.String(),
    }),
  ),
});

const runView = (r: JobRunRecord) => ({
  id: r.id,
  job: r.job,
  trigger: r.trigger,
  actor: r.actor,
  startedAt: new Date(r.startedAt).toISOString(),
  endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
  outcome: r.outcome,
  progress: r.progress,
  error: r.error,
});

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw errors.unauthenticated();
  return req.actor.id;
}

export function keysRoutes(o: KeysRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/keys/status',
      {
        config: { permission: PERMISSIONS.keysRead },
        schema: {
          tags,
          summary: 'HSM, token and KEK versions with their attributes read back from the HSM',
          response: { 200: KeyStatusReply, ...errs },
        },
      },
      async (req) => {
        await o.audit.recordNow({
          action: 'keys.status',
          actor: actorOf(req),
          outcome: 'success',
          source: auditSource(req),
        });
        return keyStatus(o.keys, o.config);
      },
    );

    app.post(
      '/keys/rotate',
      {
        config: { permission: PERMISSIONS.keysManage },
        schema: {
          tags,
          summary: 'start a KEK rotation (job keys.rotate); poll its run for progress',
          body: Type.Object(
            { confirm: Type.Literal(true, { description: 'rotation is deliberate: the caller says so' }) },
            { additionalProperties: false },
          ),
          response: { 202: Type.Object({ runId: Type.Integer() }), 400: ErrorReply, ...errs },
        },
      },
      async (req, reply) => {
        const actor = actorOf(req);
        const source = auditSource(req);
        await o.keys.provider.ready();
        await o.audit.recordNow({ action: 'keys.rotate.start', actor, outcome: 'success', source });
        const runId = await new Promise<number>((resolve, reject) => {
          let started = false;
          o.scheduler
            .run<{ toVersion: number }>('keys.rotate', {
              trigger: 'api',
              actor,
              onStarted: (id) => ((started = true), resolve(id)),
            })
            .then(
              (r) =>
                o.audit.recordNow({
                  action: 'keys.rotate',
                  actor,
                  outcome: 'success',
                  targets: { kek_version: String(r.result.toVersion), run: String(r.runId) },
                  source,
                }),
              async (e: unknown) => {
                if (!started) return reject(e);
                await o.audit.recordNow({
                  action: 'keys.rotate',
                  actor,
                  outcome: 'failure',
                  reason: (e as { code?: string }).code ?? 'ERROR',
                  source,
                });
              },
            )
            .catch((e: unknown) => req.log.error({ err: e }, 'keys.rotate: audit record failed'));
        });
        return reply.code(202).send({ runId });
      },
    );

    app.get(
      '/keys/rotations/:runId',
      {
        config: { permission: PERMISSIONS.keysRead },
        schema: {
          tags,
          summary: 'a rotation run: outcome and progress',
          params: Type.Object({ runId: Type.Integer({ minimum: 1 }) }),
          response: { 200: JobRunSchema, ...errs },
        },
      },
      async (req) => {
        const id = (req.params as { runId: number }).runId;
        const run = (await o.scheduler.runs('keys.rotate', 200)).find((r) => r.id === id);
        if (!run) throw new AppError('NOT_FOUND', 'rotation run not found', { httpStatus: 404 });
        return runView(run);
      },
    );
  };
}
