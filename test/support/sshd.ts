import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real OpenSSH sshd on loopback, with a generated ed25519 host key
 * and user key, in a temp dir. As root, sshd needs its privilege-separation dir /run/sshd, which
 * this machine lacks: sshd gets a private mount namespace with a tmpfs /run (`unshare -m`),
 * leaving the host untouched. Fails (never skips) when sshd cannot start.
 */
export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** a directory the user may write to (targets go under it) */
  root: string;
  /** `SHA256:…` of the host key, as `--host-key` takes it */
  hostKeyFingerprint: string;
  /** the host public key line (`ssh-ed25519 AAAA…`) */
  hostKeyLine: string;
  /** the user's private key file (`--identity`) */
  identityFile: string;
  /** the `sftp://` URL of a directory under root */
  url(dir: string): string;
  /** stops sshd (the target goes down); `start` brings it back on the same port */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stops sshd and removes the temp dir */
  close(): Promise<void>;
  /** pids of the running SFTP server processes (`sshd: user@internal-sftp`, one per session) */
  sftpServers(): number[];
}

const SSHD = '/usr/sbin/sshd';

/** pids of every descendant of `pid` (from /proc), deepest last */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent)
      if (pp === p) {
        out.push(c);
        walk(c);
      }
  };
  walk(pid);
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForBanner(port: number, timeoutMs: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sshd exited with ${proc.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('data', (d) => {
        sock.destroy();
        resolve(d.toString().startsWith('SSH-2.0-'));
      });
      sock.once('error', () => resolve(false));
      sock.setTimeout(1000, () => {
        sock.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `small`: directories under root (relative names) that get a tmpfs of the given size inside
 * sshd's mount namespace: a target there fills up for real (full-disk tests), and the host's
 * file systems are untouched.
 */
export async function startSshd(o: { small?: Record<string, string> } = {}): Promise<Sshd> {
  if (!fs.existsSync(SSHD))
    throw new Error(`${SSHD} is missing: apt-get install openssh-server (scripts/test installs it)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-sshd-'));
  const root = path.join(dir, 'srv');
  fs.mkdirSync(root);
  const keygen = (file: string) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'coffre-test', '-f', file]);
  keygen(path.join(dir, 'host_ed25519'));
  keygen(path.join(dir, 'user_ed25519'));
  fs.copyFileSync(path.join(dir, 'user_ed25519.pub'), path.join(dir, 'authorized_keys'));
  const hostKeyLine = fs.readFileSync(path.join(dir, 'host_ed25519.pub'), 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'host_ed25519.pub')])
    .toString()
    .split(/\s+/)[1]!;
  const port = await freePort();
  const user = os.userInfo().username;
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PidFile none',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      'MaxStartups 100',
      '',
    ].join('\n'),
  );
  let proc: ChildProcess | null = null;
  let stderr = '';
  const start = async () => {
    stderr = '';
    const small = Object.entries(o.small ?? {})
      .map(([d, size]) => {
        if (!/^[a-z0-9-]+$/.test(d) || !/^\d+[km]$/.test(size)) throw new Error(`bad tmpfs ${d}=${size}`);
        fs.mkdirSync(path.join(root, d), { recursive: true });
        return `mount -t tmpfs -o size=${size},mode=700 tmpfs ${path.join(root, d)} && `;
      })
      .join('');
    // sshd dies with the test process even when that is killed (no orphan listener left behind)
    const script =
      `mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && ${small}` +
      `{ ${SSHD} -D -e -f ${path.join(dir, 'sshd_config')} & s=$!; while kill -0 ${process.pid} 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 1; done; kill $s 2>/dev/null; wait $s; }`;
    const args = process.getuid?.() === 0 ? ['-m', 'sh', '-c', script] : ['-r', '-m', 'sh', '-c', script];
    const p = spawn('unshare', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc = p;
    try {
      await waitForBanner(port, 30_000, p, () => stderr); // generous: a loaded 2-core machine
    } catch (e) {
      p.kill('SIGKILL');
      throw e;
    }
  };
  const stop = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    // the listener and every session it forked: a stopped target drops established connections too
    const tree = p.pid ? descendants(p.pid) : [];
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      for (const pid of tree.reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      p.kill('SIGKILL');
    });
  };
  const onExit = () => proc?.kill('SIGKILL');
  process.once('exit', onExit);
  await start();
  return {
    host: '127.0.0.1',
    port,
    user,
    root,
    hostKeyFingerprint: fp,
    hostKeyLine,
    identityFile: path.join(dir, 'user_ed25519'),
    url: (d: string) => `sftp://${user}@127.0.0.1:${port}${path.join(root, d)}`,
    stop,
    start,
    sftpServers: () => {
      const p = proc as ChildProcess | null;
      return (p?.pid ? descendants(p.pid) : []).filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('internal-sftp');
        } catch {
          return false;
        }
      });
    },
    close: async () => {
      await stop();
      process.off('exit', onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
