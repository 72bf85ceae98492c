import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { isAppError } from '../shared/errors.js';
import { validateSeed, type Seed } from './seed.js';

/**
 * The console wizard: asks on the VM console what a seed file says, checks the answers with the
 * same validation, and returns a seed. Secrets (PIN, TLS key) are typed without echo.
 */
export class Prompter {
  private lines: string[] = [];
  private waiting: ((l: string | undefined) => void) | undefined;
  private closed = false;

  /** `setEcho` turns the console's echo off while a secret is typed (stty on a real TTY). */
  constructor(
    input: Readable,
    private readonly out: Writable,
    private readonly setEcho: (on: boolean) => void = () => undefined,
  ) {
    const rl = readline.createInterface({ input, terminal: false });
    rl.on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(l);
      } else this.lines.push(l);
    });
    rl.on('close', () => {
      this.closed = true;
      this.waiting?.(undefined);
    });
  }

  say(text: string): void {
    this.out.write(text + '\n');
  }

  private next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.closed) return Promise.reject(new Error('the console closed before the set-up was complete'));
    return new Promise((resolve, reject) => {
      this.waiting = (x) =>
        x === undefined ? reject(new Error('the console closed before the set-up was complete')) : resolve(x);
    });
  }

  async ask(question: string, def?: string): Promise<string> {
    this.out.write(`${question}${def !== undefined && def !== '' ? ` [${def}]` : ''}: `);
    const a = (await this.next()).trim();
    return a === '' ? (def ?? '') : a;
  }

  async secret(question: string): Promise<string> {
    this.out.write(`${question} (not shown): `);
    this.setEcho(false);
    try {
      return await this.next();
    } finally {
      this.setEcho(true);
      this.out.write('\n');
    }
  }

  /** Reads lines until an empty line (for PEM blocks). */
  async block(question: string): Promise<string> {
    this.say(`${question} (paste, then an empty line):`);
    const out: string[] = [];
    for (;;) {
      const l = await this.next();
      if (l.trim() === '') break;
      out.push(l);
    }
    return out.join('\n');
  }

  async choose<T extends string>(question: string, options: readonly T[], def: T): Promise<T> {
    for (;;) {
      const a = await this.ask(`${question} (${options.join('/')})`, def);
      if ((options as readonly string[]).includes(a)) return a as T;
      this.say(`  please answer one of: ${options.join(', ')}`);
    }
  }
}

const list = (s: string) => s.split(/[\s,]+/).filter(Boolean);

/** Runs the wizard until the answers validate; returns the seed. */
export async function runWizard(p: Prompter): Promise<Seed> {
  p.say(
    '\n=== Coffre first-boot set-up ===\nThis console is the only way in until the set-up is done. Press Enter to keep a [default].\n',
  );
  for (;;) {
    const raw: Record<string, unknown> = { version: 1 };
    p.say('--- Network');
    raw.hostname = await p.ask('Host name (one DNS label)', 'coffre');
    const domain = await p.ask('DNS domain (empty: none)', '');
    if (domain) raw.domain = domain;
    const mode = await p.choose('Address', ['dhcp', 'static'] as const, 'dhcp');
    if (mode === 'static') {
      raw.network = {
        mode,
        address: await p.ask('Address with prefix (e.g. 192.0.2.10/24)'),
        gateway: await p.ask('Gateway'),
        dns: list(await p.ask('DNS servers (space-separated)')),
      };
    } else raw.network = { mode };
    const ntp = list(await p.ask('NTP servers (space-separated; empty: Debian pool)', ''));
    if (ntp.length) raw.ntp = ntp;

    p.say('--- Access');
    const httpsFrom = list(await p.ask('Networks allowed to reach HTTPS', '0.0.0.0/0 ::/0'));
    const sshFrom = list(await p.ask('Management networks allowed to SSH (empty: none)', ''));
    raw.firewall = { httpsFrom, sshFrom };
    const operators: unknown[] = [];
    if (sshFrom.length) {
      const name = await p.ask('Operator account for SSH', 'operator');
      const key = await p.ask("Operator's SSH public key (one line)");
      const sudo = await p.choose('Operator may use sudo for', ['appliance', 'full'] as const, 'appliance');
      operators.push({ name, sshKeys: [key], sudo });
    }
    raw.operators = operators;

    p.say('--- TLS certificate');
    const tls = await p.choose('Certificate', ['generate', 'paste'] as const, 'generate');
    raw.tls =
      tls === 'generate'
        ? { mode: 'generate' }
        : {
            mode: 'provided',
            certChain: await p.block('Certificate chain (PEM, server certificate first)'),
            key: await p.block('Private key (PEM)'),
          };

    p.say('--- HSM');
    const hsm = await p.choose('Keys in', ['softhsm', 'pkcs11'] as const, 'softhsm');
    if (hsm === 'pkcs11') {
      const module = await p.ask('PKCS#11 library path');
      const which = await p.ask('Token label (or slot number)');
      const h: Record<string, unknown> = { type: 'pkcs11', module, pin: await p.secret('User PIN') };
      h.pinStore = await p.choose('Keep the PIN as', ['file', 'credential'] as const, 'file');
      if (/^\d+$/.test(which)) h.slot = Number(which);
      else h.tokenLabel = which;
      raw.hsm = h;
    } else raw.hsm = { type: 'softhsm' };

    p.say('--- Site');
    raw.site = {
      jurisdiction: (await p.ask('Jurisdiction (ISO 3166 code)', 'FR')).toUpperCase(),
      lat: Number(await p.ask('Latitude', '48.8566')),
      lon: Number(await p.ask('Longitude', '2.3522')),
      timeZone: await p.ask('Time zone', 'Europe/Paris'),
    };
    p.say('--- First administrator');
    const admin = await p.ask('User name (- for none now)', 'admin');
    if (admin !== '-') raw.admin = { username: admin, email: await p.ask('E-mail address') };

    try {
      const seed = validateSeed(raw, 'your answers');
      const go = await p.choose('\nApply these settings now?', ['yes', 'no'] as const, 'yes');
      if (go === 'yes') return seed;
    } catch (e) {
      if (!isAppError(e)) throw e;
      p.say(`\n${e.message}\nLet us go through the questions again.\n`);
    }
  }
}
