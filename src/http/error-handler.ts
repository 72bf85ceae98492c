import type { FastifyError, FastifyInstance } from 'fastify';
import { isAppError } from '../shared/errors.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; details?: unknown };
}

const FASTIFY_CODES: Record<string, { status: number; code: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE', message: 'request body too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'unsupported content type' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'BAD_REQUEST', message: 'empty JSON body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'BAD_REQUEST', message: 'malformed JSON body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'BAD_REQUEST', message: 'content length does not match the body' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_REQUEST', message: 'malformed URL' },
};

/**
 * One error handler: AppErrors answer with their code and (when exposable) message; validation
 * errors with 400; anything else with a generic 500 that carries only the request id. Stacks and
 * internals are logged, never sent.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const requestId = String(req.id);
    let status = 500;
    let body: ErrorBody['error'] = { code: 'INTERNAL', message: 'internal error', requestId };
    if (isAppError(err)) {
      status = err.httpStatus;
      body = { code: err.code, message: err.expose ? err.message : 'internal error', requestId };
      if (err.expose && err.details !== undefined) body.details = err.details;
      // every 429 says when to come back
      const after = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
      if (status === 429 && typeof after === 'number' && !reply.sent) void reply.header('retry-after', String(after));
    } else if (err.validation) {
      status = 400;
      body = { code: 'VALIDATION', message: `invalid request: ${err.message}`, requestId };
    } else if (err.code && FASTIFY_CODES[err.code]) {
      const m = FASTIFY_CODES[err.code]!;
      status = m.status;
      body = { code: m.code, message: m.message, requestId };
    } else if (err.statusCode === 429) {
      status = 429;
      body = { code: 'RATE_LIMITED', message: 'too many requests', requestId };
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      body = { code: 'BAD_REQUEST', message: err.message, requestId };
    }
    if (status >= 500) req.log.error({ err, reqId: req.id }, 'request failed');
    else req.log.info({ code: body.code, status }, 'request refused');
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    if (isAppError(err) && err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
    void reply.code(status).header('content-type', 'application/json; charset=utf-8').send({ error: body });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such route', requestId: String(req.id) } });
  });
}
