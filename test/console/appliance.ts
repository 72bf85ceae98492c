import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runCli, startServe } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

/** a free TCP port on loopback (the public URL names the port, so serve must use the same one) */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningAppliance {
  dataDir: string;
  url: string;
  ca: string;
  enrolUrl: string | undefined;
  child: ChildProcess;
  logs(): string;
  cli(args: string[], input?: string): ReturnType<typeof runCli>;
  /** `coffre user invite` on the local data dir: the enrolment link */
  invite(username: string, role: string): Promise<string>;
  stop(): Promise<void>;
}

/** `coffre init --admin …` on a temp data dir, then `coffre serve` on the port of its public URL */
export async function startAppliance(
  admin: { username: string; email: string },
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<RunningAppliance> {
  const dataDir = path.join(tempDir('coffre-console-'), 'appliance');
  const port = await freePort();
  const init = await runCli([
    'init',
    '--data-dir',
    dataDir,
    '--port',
    String(port),
    '--admin',
    admin.username,
    '--admin-email',
    admin.email,
    '--json',
    ...extra,
  ]);
  if (init.code !== 0) throw new Error(`coffre init failed (${init.code}): ${init.stderr}`);
  const out = JSON.parse(init.stdout) as { url: string; caFile: string; enrolUrl?: string };
  const s = await startServe(dataDir, port, env);
  return {
    dataDir,
    url: out.url,
    ca: fs.readFileSync(out.caFile, 'utf8'),
    enrolUrl: out.enrolUrl,
    child: s.child,
    logs: s.logs,
    cli: (args, input) => runCli([...args, '--data-dir', dataDir], input === undefined ? {} : { input }),
    invite: async (username, role) => {
      const r = await runCli([
        ...['user', 'invite', username, '--email', `${username}@example.test`, '--role', role, '--json'],
        ...['--data-dir', dataDir],
      ]);
      if (r.code !== 0) throw new Error(`coffre user invite failed (${r.code}): ${r.stderr}`);
      return (JSON.parse(r.stdout) as { enrolUrl: string }).enrolUrl;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (s.child.exitCode !== null) return resolve();
        s.child.removeAllListeners('exit');
        s.child.once('exit', () => resolve());
        s.child.kill('SIGTERM');
      }),
  };
}
