/**
 * One error type for the whole appliance, with stable codes (docs/errors.md).
 *
 * - `code` is stable: scripts and the console match on it.
 * - `httpStatus` is what the HTTP error handler answers.
 * - `expose`: whether `message` may be shown to a client. Internal errors are logged with the
 *   request id and answered with a generic message.
 * - `hint`: what the operator should do ("check keys.pinFile"). Shown by the CLI as
 *   `CODE: message — hint`.
 * - `exitCode`: what the CLI exits with (1 operation failed, 2 usage or configuration).
 * - `retryAfterS`: for a temporary refusal (503), when to try again; sent as `Retry-After`.
 *
 * Messages must never contain secrets (PINs, passwords, tokens, keys, links).
 */
export interface AppErrorOptions {
  httpStatus?: number;
  expose?: boolean;
  hint?: string;
  exitCode?: 1 | 2;
  details?: unknown;
  cause?: unknown;
  retryAfterS?: number;
}

export class AppError extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly expose: boolean;
  readonly hint: string | undefined;
  readonly exitCode: 1 | 2;
  readonly details: unknown;
  readonly retryAfterS: number | undefined;

  constructor(code: string, message: string, opts: AppErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.httpStatus = opts.httpStatus ?? 500;
    this.expose = opts.expose ?? this.httpStatus < 500;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
    this.details = opts.details;
    this.retryAfterS = opts.retryAfterS;
  }

  /** `CODE: message — hint`, the CLI's one-line error format. */
  toLine(): string {
    return `${this.code}: ${this.message}${this.hint ? ` — ${this.hint}` : ''}`;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

/** Common errors with fixed codes. */
export const errors = {
  config: (message: string, details?: unknown) =>
    new AppError('CONFIG_INVALID', message, {
      httpStatus: 500,
      exitCode: 2,
      hint: 'fix the configuration and try again',
      details,
    }),
  usage: (message: string, hint?: string) =>
    new AppError('USAGE', message, { httpStatus: 400, exitCode: 2, hint: hint ?? 'see --help' }),
  notFound: (what = 'resource') => new AppError('NOT_FOUND', `${what} not found`, { httpStatus: 404 }),
  unauthenticated: () => new AppError('UNAUTHENTICATED', 'authentication required', { httpStatus: 401 }),
  forbidden: () => new AppError('FORBIDDEN', 'not allowed', { httpStatus: 403 }),
  keysUnavailable: (message: string, hint = 'check the HSM and the keys section of the configuration') =>
    new AppError('KEYS_UNAVAILABLE', message, { httpStatus: 503, expose: true, hint }),
};
