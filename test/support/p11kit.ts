import fs from 'node:fs';
import net from 'node:net';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { TestToken } from './softhsm.js';

/** p11-kit's client module (Debian p11-kit-modules): a PKCS#11 module that forwards to `p11-kit server` */
export const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';

/** whether something accepts a connection on the Unix socket `sock` now */
const accepts = (sock: string) =>
  new Promise<boolean>((resolve) => {
    const c = net.connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

/**
 * `p11-kit server` for the test token on the Unix socket `sock`, in a process group of its own (it
 * forks one child per connection: signal the group). Resolves once the server accepts connections:
 * the socket file exists from its bind(), before its listen(), and a client module that connects in
 * between finds no token.
 */
export async function startP11KitServer(
  t: Pick<TestToken, 'module' | 'label' | 'conf'>,
  sock: string,
  stdio: StdioOptions = 'ignore',
): Promise<ChildProcess> {
  const p = spawn('p11-kit', ['server', '-f', '-n', sock, '--provider', t.module, `pkcs11:token=${t.label}`], {
    env: { ...process.env, SOFTHSM2_CONF: t.conf },
    stdio,
    detached: true,
  });
  for (const until = Date.now() + 10_000; !(fs.existsSync(sock) && (await accepts(sock)));) {
    if (Date.now() > until || p.exitCode !== null) {
      signalGroup(p, 'SIGKILL');
      throw new Error('p11-kit server did not start');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return p;
}

/** sends `sig` to the server and the children it forked */
export function signalGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pid!, sig);
  } catch {
    /* already gone */
  }
}
