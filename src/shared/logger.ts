import pino, { type Logger, type DestinationStream } from 'pino';
import { LOG_REDACT_PATHS } from './redact.js';

export type { Logger };

/**
 * pino JSON logs with secrets redacted. `serve` logs to stdout; other CLI verbs log to stderr so
 * stdout stays for their result.
 */
export function createLogger(
  opts: { level?: string; destination?: 'stdout' | 'stderr' | DestinationStream } = {},
): Logger {
  const dest =
    opts.destination === undefined || opts.destination === 'stdout'
      ? pino.destination({ fd: 1, sync: false })
      : opts.destination === 'stderr'
        ? pino.destination({ fd: 2, sync: true })
        : opts.destination;
  return pino(
    {
      level: opts.level ?? 'info',
      base: { svc: 'coffre' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: LOG_REDACT_PATHS, censor: '[REDACTED]' },
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  );
}
