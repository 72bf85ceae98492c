#!/usr/bin/env node
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registrationsFor, type Registration } from './commands.js';
import { reportFailure, stdio, type Io } from './output.js';
import { isCliEntry } from '../runtime/index.js';

export function makeProgram(io: Io, registrations: Registration[]): Command {
  const program = new Command('coffre')
    .description(
      'Coffre: the self-hosted digital safe. Exit codes: 0 done, 1 failed, 2 usage or configuration, 3 partial, 4 authentication or permission, 5 busy or locked, 6 unreachable, 7 integrity (docs/cli.md).',
    )
    .version(packageVersion())
    // root options only before the verb: `coffre doc get ID --version 2` is the verb's own option
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined })
    .exitOverride();
  for (const r of registrations) r(program, io);
  // every sub-command reports usage errors the same way
  const walk = (c: Command) => {
    c.exitOverride().configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: () => undefined,
    });
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

/** The version in the package.json above this file (src/cli in a checkout, dist/src/cli when built). */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'coffre' && pkg.version) return pkg.version;
    } catch {
      /* not here: look one level up */
    }
  }
  return 'unknown';
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const program = makeProgram(io, await registrationsFor(argv.slice(2)));
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (
      e instanceof CommanderError &&
      (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
    )
      return 0;
    if (e instanceof CommanderError && e.code === 'commander.executeSubCommandAsync') return 1;
    return reportFailure(io, argv.includes('--json'), e);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || isCliEntry(process.argv[1]);
if (isEntry) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
