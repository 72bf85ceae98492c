#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registrations } from './commands.js';
import { describeError, stdio, type Io } from './output.js';

export function makeProgram(io: Io = stdio): Command {
  const program = new Command('coffre')
    .description('Coffre: the self-hosted digital safe. Exit codes: 0 done, 1 failed, 2 usage or configuration error.')
    .version(process.env.npm_package_version ?? '0.1.0')
    // root options only before the verb: `coffre doc get ID --version 2` is the verb's own option
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined })
    .exitOverride();
  for (const r of registrations) r(program, io);
  // every sub-command reports usage errors the same way
  const walk = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => undefined });
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const program = makeProgram(io);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')) return 0;
    if (e instanceof CommanderError && e.code === 'commander.executeSubCommandAsync') return 1;
    const { line, exitCode } = describeError(e);
    io.err(line);
    return exitCode;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

const isEntry = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.js');
if (isEntry) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
