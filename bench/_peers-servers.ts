import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureTools } from './_tools.js';

/**
 * The file servers bench/peers.ts compares Coffre with, each started by the bench on loopback with
 * its own configuration in a temporary directory (never a system service), on the bench's
 * certificate, serving WebDAV PUT and GET over HTTPS:
 * - nginx (Debian's nginx-full: its WebDAV module), TLS 1.3 with TLS_AES_256_GCM_SHA384 only,
 *   Debian's defaults otherwise (one worker per core, sendfile, no fsync on PUT);
 * - rclone `serve webdav` over a `crypt` remote over a local directory (encrypted at rest), rclone's
 *   defaults otherwise (no VFS cache, no fsync).
 */
export interface Peer {
  name: string;
  url: string;
  /** where the peer keeps what it is sent (emptied between rounds) */
  dir: string;
  child: ChildProcess;
}

/** a free TCP port on loopback (both peers take a fixed address) */
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

/** resolves once something accepts TCP connections on the port; rejects if the process ends first */
async function listening(child: ChildProcess, port: number, what: string, log: () => string): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`${what} exited: ${log().slice(-2000)}`);
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port}: ${log().slice(-2000)}`);
}

/** a server the bench started ends with the bench, even when an uncaught error ends it */
export function endsWithBench(child: ChildProcess): ChildProcess {
  process.once('exit', () => child.exitCode === null && child.kill('SIGTERM'));
  return child;
}

function start(bin: string, args: string[]): { child: ChildProcess; log: () => string } {
  const child = endsWithBench(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, log: () => out };
}

export async function startNginx(root: string, cert: string, key: string): Promise<Peer> {
  ensureTools({ nginx: 'nginx-full' });
  const v = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  if (!/--with-http_dav_module/.test(v.stdout + v.stderr))
    throw new Error(
      'missing: nginx with its WebDAV module (Debian package nginx-full); install with: apt-get install -y nginx-full',
    );
  const base = path.join(root, 'nginx');
  const dir = path.join(base, 'dav');
  for (const d of [dir, path.join(base, 'tmp'), path.join(base, 'logs')]) fs.mkdirSync(d, { recursive: true });
  // as root, nginx's workers run as www-data (Debian's nginx user): they must write the WebDAV tree
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'www-data'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'www-data'], { encoding: 'utf8' }).trim());
    for (const d of [base, dir, path.join(base, 'tmp'), path.join(base, 'logs')]) fs.chownSync(d, uid, gid);
    fs.chmodSync(root, 0o711); // they pass through the bench's directory, without listing it
  }
  const port = await freePort();
  const conf = path.join(base, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `${asRoot ? 'user www-data;\n' : ''}worker_processes auto;
daemon off;
pid ${base}/nginx.pid;
error_log stderr warn;
events { worker_connections 768; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path ${base}/tmp;
  proxy_temp_path ${base}/tmp;
  fastcgi_temp_path ${base}/tmp;
  uwsgi_temp_path ${base}/tmp;
  scgi_temp_path ${base}/tmp;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
    root ${dir};
    client_max_body_size 0;
    location / {
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      dav_access user:rw;
    }
  }
}
`,
  );
  const { child, log } = start('nginx', ['-p', base, '-c', conf, '-e', 'stderr']);
  await listening(child, port, 'nginx', log);
  return { name: 'nginx', url: `https://127.0.0.1:${port}`, dir, child };
}

export async function startRclone(root: string, cert: string, key: string): Promise<Peer> {
  ensureTools({ rclone: 'rclone' });
  const base = path.join(root, 'rclone');
  const dir = path.join(base, 'store');
  fs.mkdirSync(dir, { recursive: true });
  const obscure = (p: string) => execFileSync('rclone', ['obscure', '-'], { input: p, encoding: 'utf8' }).trim();
  const conf = path.join(base, 'rclone.conf');
  fs.writeFileSync(
    conf,
    `[vault]
type = crypt
remote = ${dir}
password = ${obscure(crypto.randomUUID())}
password2 = ${obscure(crypto.randomUUID())}
`,
    { mode: 0o600 },
  );
  const port = await freePort();
  const { child, log } = start('rclone', [
    'serve',
    'webdav',
    'vault:',
    '--config',
    conf,
    '--addr',
    `127.0.0.1:${port}`,
    '--cert',
    cert,
    '--key',
    key,
    '--min-tls-version',
    'tls1.3',
  ]);
  await listening(child, port, 'rclone', log);
  return { name: 'rclone', url: `https://127.0.0.1:${port}`, dir, child };
}
