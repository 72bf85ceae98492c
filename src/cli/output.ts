import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { AppError, isAppError } from '../shared/errors.js';
import { ConfigError } from '../config/index.js';
import { redactText } from '../shared/redact.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

/**
 * CLI conventions (docs/cli.md): exit codes from `EXIT` (./exit-codes.ts); `--json` prints exactly
 * one object on stdout, failures included (`{"ok": false, "code", "message", "hint", "exitCode"}`);
 * everything else (progress, logs, errors) goes to stderr; errors are one line
 * `CODE: message — what to do`.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}
export const stdio: Io = {
  out: (t) => void process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
};

/** `local:<os-user>`: how local commands appear in the audit trail. */
export function localActor(): string {
  let name = 'unknown';
  try {
    name = os.userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `local:${name}`;
}

export const jsonOption = () => new Option('--json', 'print one JSON object on stdout');
export const dataDirOption = () =>
  new Option('--data-dir <dir>', 'appliance data directory (default: $COFFRE_DATA_DIR or ./data)');

/** Prints a result: JSON object with --json, else the human text. */
export function emit(
  io: Io,
  json: boolean | undefined,
  obj: Record<string, unknown>,
  human: string | (() => string),
): void {
  if (json) io.out(JSON.stringify(obj));
  else io.out(typeof human === 'function' ? human() : human);
}

/**
 * An unexpected error's message without what it may quote of its input (JSON.parse and others
 * quote the bytes they choked on: a damaged database's bytes, a confidential value): quoted parts
 * are elided, anything but printable ASCII becomes `?`.
 */
export function scrubMessage(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  const msg = (e instanceof Error ? e.message : String(e))
    .replace(/"[^"]*"?|'[^']*'?|`[^`]*`?/g, '…')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
  return typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code) ? `${msg} (${code})` : msg;
}

/** What a failure prints: the one-line text, the JSON object for `--json`, the exit code. */
export interface Failure {
  line: string;
  exitCode: number;
  json: Record<string, unknown>;
}

/** Turns any error into the one-line format, its JSON object and an exit code. */
export function describeError(e: unknown): Failure {
  const fail = (
    code: string,
    message: string,
    hint: string | undefined,
    exitCode: number,
    extra: Record<string, unknown> = {},
  ): Failure => ({
    line: redactText(`${code}: ${message}${hint ? ` — ${hint}` : ''}`),
    exitCode,
    json: {
      ...extra,
      ok: false,
      code,
      message: redactText(message),
      ...(hint ? { hint: redactText(hint) } : {}),
      exitCode,
    },
  });
  if (e instanceof ConfigError) return fail(e.code, e.message, e.hint, EXIT.usage);
  if (isAppError(e)) {
    const details =
      e.details !== null && typeof e.details === 'object' && !Array.isArray(e.details)
        ? (e.details as Record<string, unknown>)
        : {};
    return fail(e.code, e.message, e.hint, exitCodeFor(e), details);
  }
  if (e instanceof CommanderError) return fail('USAGE', e.message.replace(/^error: /, ''), 'see --help', EXIT.usage);
  return fail('INTERNAL', scrubMessage(e), 'this is a bug or an unexpected environment; see the logs', EXIT.failed);
}

/** Prints a failure: the JSON object on stdout with `--json`, always the line on stderr. */
export function reportFailure(io: Io, json: boolean, e: unknown): number {
  const f = describeError(e);
  if (json) io.out(JSON.stringify(f.json));
  io.err(f.line);
  return f.exitCode;
}

/** Whether the command being run was given `--json` (commander passes the command last). */
function wantsJson(args: unknown[]): boolean {
  const cmd = args[args.length - 1];
  return cmd instanceof Command && cmd.opts()['json'] === true;
}

/** Wraps an action: errors become `CODE: message — hint` on stderr (and the JSON object on stdout with --json) and the right exit code. */
export function action<A extends unknown[]>(io: Io, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.exitCode = reportFailure(io, wantsJson(args), e);
    }
  };
}

/** exit codes of a command stopped by a signal (128 + its number, the shell's convention) */
const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs a long local command so that SIGTERM or SIGINT stops it cleanly: `fn` gets a signal that
 * aborts at the first one; once it has unwound (its run recorded, its lease released, its scratch
 * copies removed), the command exits with 128 + the signal's number (130 SIGINT, 143 SIGTERM). A
 * second signal, or no unwind within `graceMs`, exits at once: the next process of this host takes
 * the lease over at once and sweeps the scratch space.
 */
export async function interruptible(
  io: Io,
  fn: (signal: AbortSignal) => Promise<void>,
  o: { json?: boolean | undefined; graceMs?: number } = {},
): Promise<void> {
  const graceMs = o.graceMs ?? 30_000;
  const ac = new AbortController();
  let got: 'SIGINT' | 'SIGTERM' | null = null;
  const on = (sig: 'SIGINT' | 'SIGTERM') => {
    if (got) process.exit(SIGNAL_EXIT[got]);
    got = sig;
    io.err(`${sig}: stopping at the next safe point (send it again to stop at once)`);
    ac.abort();
    setTimeout(() => {
      io.err(
        `INTERRUPTED: not stopped ${Math.round(graceMs / 1000)} s after ${sig}; exiting now (the next run takes the lease over and removes what this one left)`,
      );
      process.exit(SIGNAL_EXIT[sig]);
    }, graceMs).unref();
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await fn(ac.signal);
  } catch (e) {
    if (!got) throw e;
    const f = describeError(e);
    const exitCode = SIGNAL_EXIT[got];
    if (o.json) io.out(JSON.stringify({ ...f.json, exitCode, interrupted: got }));
    io.err(f.line);
    io.err(
      `INTERRUPTED: stopped by ${got}; the run is recorded as failed, its lease released and its scratch copies removed`,
    );
    process.exitCode = exitCode;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** Parses a number option, failing with a usage error. */
export function parseNumber(name: string, min: number, max: number, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new AppError(
        'USAGE',
        `${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max} (got "${v}")`,
        { exitCode: 2, hint: 'see --help' },
      );
    }
    return n;
  };
}

/** Parses an ISO 8601 date (midnight UTC) or date-time option to ms, failing with a usage error. */
export function parseTime(flag: string, v: string): number {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(v)
    ? Date.parse(`${v}T00:00:00Z`)
    : /^\d{4}-\d{2}-\d{2}T/.test(v)
      ? Date.parse(v)
      : NaN;
  if (!Number.isFinite(t))
    throw new AppError('USAGE', `${flag} must be an ISO 8601 date or date-time (got "${v}")`, { exitCode: 2 });
  return t;
}

export type { Command };
