/**
 * A real appliance in its own process, as customers run it: `coffre init`, `coffre serve`, a user
 * invited and enrolled through the CLI, an API token from `coffre login`, a workspace. Used by the
 * tests that measure the server (RSS), kill it (SIGKILL) or drive the client CLI.
 */
import * as OTPAuth from 'otpauth';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { runCli, startServe } from '../support/cli.js';

export interface Served {
  dataDir: string;
  url: string;
  caFile: string;
  ca: string;
  token: string;
  workspace: string;
  child: ChildProcess;
  /** environment for client commands */
  clientEnv: Record<string, string>;
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** what the server printed so far (stdout and stderr) */
  logs(): string;
  /** resets the kernel's peak-RSS counter (VmHWM) of the server process */
  resetPeak(): void;
  /** peak resident set (VmHWM) and current RSS of the server process, bytes */
  memory(): { peak: number; rss: number };
  close(): Promise<void>;
}

const cliOk = async (args: string[], env: Record<string, string> = {}, input?: string) => {
  const r = await runCli(args, { env, ...(input !== undefined ? { input } : {}) });
  expect(r.code, `coffre ${args[0]} ${args[1] ?? ''}: ${r.stderr}`).toBe(0);
  return r.stdout;
};

export async function serveAppliance(env: Record<string, string> = {}): Promise<Served> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-served-'));
  const dataDir = path.join(root, 'data');
  const init = JSON.parse(await cliOk(['init', '--data-dir', dataDir, '--json'], env)) as { caFile: string };
  const caFile = init.caFile;
  let child!: ChildProcess;
  let url = '';
  let logs: () => string = () => '';
  const s: Served = {
    dataDir,
    caFile,
    ca: fs.readFileSync(caFile, 'utf8'),
    token: '',
    workspace: '',
    clientEnv: {},
    get child() {
      return child;
    },
    get url() {
      return url;
    },
    logs: () => logs(),
    async start() {
      const r = await startServe(dataDir, 0, env);
      child = r.child;
      url = r.url;
      logs = r.logs;
      s.clientEnv = { COFFRE_URL: url, COFFRE_CA: caFile, ...(s.token ? { COFFRE_TOKEN: s.token } : {}) };
    },
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
    resetPeak() {
      fs.writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
    },
    memory() {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      return { peak: kb('VmHWM'), rss: kb('VmRSS') };
    },
    async close() {
      await s.kill('SIGTERM');
      fs.rmSync(root, { recursive: true, force: true });
    },
  } as Served;
  await s.start();
  const invite = JSON.parse(
    await cliOk(
      ['user', 'invite', 'alice', '--email', 'alice@example.test', '--role', 'member', '--data-dir', dataDir, '--json'],
      env,
    ),
  ) as { enrolUrl: string };
  const password = `Tangerine-Ladder-${Math.random().toString(36).slice(2, 10)}X`;
  const enrolled = JSON.parse(
    await cliOk(
      ['user', 'enrol', invite.enrolUrl, '--password-stdin', '--json'],
      { ...env, ...s.clientEnv },
      `${password}\n`,
    ),
  ) as { totp?: { secret: string } };
  // a second factor is required for every role by default: the code goes on stdin's second line
  const code = enrolled.totp
    ? OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(enrolled.totp.secret),
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
      })
    : '';
  s.token = (
    JSON.parse(
      await cliOk(
        ['login', '--username', 'alice', '--password-stdin', '--json'],
        { ...env, ...s.clientEnv },
        `${password}\n${code}\n`,
      ),
    ) as { token: string }
  ).token;
  s.clientEnv.COFFRE_TOKEN = s.token;
  s.workspace = (
    JSON.parse(await cliOk(['workspace', 'create', 'Board', '--json'], { ...env, ...s.clientEnv })) as { id: string }
  ).id;
  return s;
}
