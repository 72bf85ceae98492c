import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { AppError, isAppError } from '../shared/errors.js';
import { ConfigError } from '../config/index.js';
import { redactText } from '../shared/redact.js';

/**
 * CLI conventions (CONTRACT.md): exit 0 done, 1 operation failed, 2 usage or configuration;
 * `--json` prints exactly one object on stdout; everything else (progress, logs, errors) goes to
 * stderr; errors are one line `CODE: message — what to do`.
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
export const dataDirOption = () => new Option('--data-dir <dir>', 'appliance data directory (default: $COFFRE_DATA_DIR or ./data)');

/** Prints a result: JSON object with --json, else the human text. */
export function emit(io: Io, json: boolean | undefined, obj: Record<string, unknown>, human: string | (() => string)): void {
  if (json) io.out(JSON.stringify(obj));
  else io.out(typeof human === 'function' ? human() : human);
}

/** Turns any error into the one-line format and an exit code. */
export function describeError(e: unknown): { line: string; exitCode: number } {
  if (e instanceof ConfigError) return { line: redactText(`${e.code}: ${e.message}\n  — ${e.hint ?? ''}`), exitCode: 2 };
  if (isAppError(e)) return { line: redactText(e.toLine()), exitCode: e.exitCode };
  if (e instanceof CommanderError) return { line: `USAGE: ${e.message.replace(/^error: /, '')} — see --help`, exitCode: 2 };
  const msg = e instanceof Error ? e.message : String(e);
  return { line: redactText(`INTERNAL: ${msg} — this is a bug or an unexpected environment; see the logs`), exitCode: 1 };
}

/** Wraps an action: errors become `CODE: message — hint` on stderr and the right exit code. */
export function action<A extends unknown[]>(io: Io, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const { line, exitCode } = describeError(e);
      io.err(line);
      process.exitCode = exitCode;
    }
  };
}

/** Parses a number option, failing with a usage error. */
export function parseNumber(name: string, min: number, max: number, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new AppError('USAGE', `${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max} (got "${v}")`, { exitCode: 2, hint: 'see --help' });
    }
    return n;
  };
}

export type { Command };
