import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { isAppError } from '../shared/errors.js';
import { hasMessage, pickLanguage, translator, type Language } from '../shared/i18n/index.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; details?: unknown };
}

const FASTIFY_CODES: Record<string, { status: number; code: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE', message: 'request body too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'unsupported content type' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'BAD_REQUEST', message: 'empty JSON body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'BAD_REQUEST', message: 'malformed JSON body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'BAD_REQUEST',
    message: 'content length does not match the body',
  },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_REQUEST', message: 'malformed URL' },
};

/**
 * The message of an answer in the reader's language (docs/i18n.md): the signed-in user's choice,
 * else the request's Accept-Language, else English. Codes never change. In English the module's
 * own message is kept (it is the most specific); in another language the catalogue's message for
 * the code (src/shared/i18n/locales/<lang>/errors.json), with that message as `{{detail}}` where
 * the catalogue shows one. A code without an entry keeps the module's message.
 */
export function localise(lang: Language, code: string, message: string, detail = message): string {
  if (lang === 'en') return message;
  const key = `errors.codes.${code}`;
  return hasMessage(key) ? translator(lang)(key, { detail }) : message;
}

function languageOf(req: FastifyRequest): Language {
  const h = req.headers['accept-language'];
  return pickLanguage(req.actor?.language, typeof h === 'string' ? h : undefined);
}

/**
 * One error handler: AppErrors answer with their code and (when exposable) message; validation
 * errors with 400; anything else with a generic 500 that carries only the request id. Stacks and
 * internals are logged, never sent. Messages follow the reader's language (`localise`).
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const requestId = String(req.id);
    let status = 500;
    let body: ErrorBody['error'] = { code: 'INTERNAL', message: 'internal error', requestId };
    /** what a translated message may quote (`{{detail}}`): never more than the English answer shows */
    let detail: string | undefined;
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
      detail = err.message;
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
    // the message only: the code, log and details stay as they are
    body.message = localise(languageOf(req), body.code, body.message, detail);
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
    const lang = languageOf(req);
    void reply.code(404).send({
      error: {
        code: 'NOT_FOUND',
        message: lang === 'en' ? 'no such route' : translator(lang)('errors.noRoute'),
        requestId: String(req.id),
      },
    });
  });
}
