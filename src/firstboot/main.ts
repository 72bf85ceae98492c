#!/usr/bin/env node
/**
 * coffre-firstboot (appliance/sbin/coffre-firstboot runs this with the release's Node):
 *   coffre-firstboot                apply a seed file if one is found, else run the console wizard
 *   coffre-firstboot --seed FILE    apply this seed file
 *   coffre-firstboot --wizard       run the console wizard on /dev/tty1 even if a seed exists
 *   coffre-firstboot --enrolment-link   show the first administrator's one-time enrolment link (root)
 * Exit codes: 0 done (or already set up), 1 failed, 2 invalid seed. Errors: `CODE: message — hint`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describeError } from '../cli/output.js';
import { CONFIG_FILE } from '../config/index.js';
import { isAppError } from '../shared/errors.js';
import { applySeed, DATA_DIR, ENROL_FILE } from './apply.js';
import { destroySeed, findSeed } from './discover.js';
import { parseSeed } from './seed.js';
import { Prompter, runWizard } from './wizard.js';

const TTY = '/dev/tty1';
const log = (m: string) => process.stdout.write(`coffre-firstboot: ${m}\n`);
/** The console screen: the enrolment link goes here, never to the journal. */
function toConsole(m: string): void {
  try {
    fs.appendFileSync(TTY, m.replace(/\n/g, '\r\n') + '\r\n');
  } catch {
    /* no console (container, chroot): the link is in the root-only file */
  }
}

/** Prints the first administrator's link (root only: the file is 0600 root); exit 1 when there is none. */
function showEnrolmentLink(): number {
  let link: string;
  try {
    link = fs.readFileSync(ENROL_FILE, 'utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT'
        ? 'the first boot created no administrator (no "admin" in the seed), or the file was removed; invite one with: sudo coffre user invite NAME --email ADDRESS --role admin'
        : 'run it with sudo';
    process.stderr.write(`ENROLMENT_LINK_UNAVAILABLE: cannot read ${ENROL_FILE} (${code ?? 'error'}) — ${hint}\n`);
    return 1;
  }
  process.stdout.write(`${link}\n(one use, valid 24 h from the first boot)\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  process.umask(0o077);
  const args = argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      'usage: coffre-firstboot [--seed FILE | --wizard | --enrolment-link]\nSeed file format: docs/appliance.md\n',
    );
    return 0;
  }
  if (args.length === 1 && args[0] === '--enrolment-link') return showEnrolmentLink();
  const unknown = args.filter((a, i) => !['--seed', '--wizard'].includes(a) && args[i - 1] !== '--seed');
  if (unknown.length || (args.includes('--seed') && !args[args.indexOf('--seed') + 1])) {
    process.stderr.write('USAGE: coffre-firstboot [--seed FILE | --wizard | --enrolment-link] — see --help\n');
    return 2;
  }
  try {
    if (fs.existsSync(path.join(DATA_DIR, CONFIG_FILE))) {
      log(`already set up (${DATA_DIR}/${CONFIG_FILE} exists): nothing to do`);
      return 0;
    }
    const seedArg = args.includes('--seed') ? args[args.indexOf('--seed') + 1]! : undefined;
    const found = seedArg
      ? { text: fs.readFileSync(seedArg, 'utf8'), source: seedArg }
      : args.includes('--wizard')
        ? undefined
        : findSeed(log);
    if (found) {
      log(`applying the seed from ${found.source}`);
      const seed = parseSeed(found.text, found.source);
      const r = await applySeed(seed, { source: found.source, log, console: toConsole });
      if ('deleteAfter' in found && found.deleteAfter) destroySeed(found.deleteAfter);
      log(`done: ${r.url} (certificate SHA-256 ${r.fingerprint})`);
      return 0;
    }
    log(`no seed file found: running the wizard on ${TTY}`);
    const input = fs.createReadStream(TTY);
    const output = fs.createWriteStream(TTY);
    const echo = (on: boolean) => {
      try {
        execFileSync('stty', ['-F', TTY, on ? 'echo' : '-echo'], { stdio: 'ignore' });
      } catch {
        /* not a terminal */
      }
    };
    const p = new Prompter(input, output, echo);
    for (;;) {
      const seed = await runWizard(p);
      try {
        const r = await applySeed(seed, { source: 'console wizard', log, console: (m) => p.say(m) });
        log(`done: ${r.url}`);
        p.say('\nPress Enter to finish.');
        await p.ask('');
        input.destroy();
        output.end();
        return 0;
      } catch (e) {
        if (!isAppError(e) || e.code === 'APPLIANCE_EXISTS') throw e;
        p.say(`\n${e.toLine()}\nNothing was kept; let us try again.\n`);
      }
    }
  } catch (e) {
    const { line, exitCode } = describeError(e);
    process.stderr.write(line + '\n');
    return exitCode;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
