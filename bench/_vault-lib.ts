import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Helpers of bench/vault.ts: processes, HTTPS requests, /proc readings, figures with their targets. */
export const here = path.dirname(fileURLToPath(import.meta.url));
/** VAULT_BENCH_CLI: another build's CLI (e.g. an older commit's), to compare builds with the same bench */
export const CLI = process.env.VAULT_BENCH_CLI ?? path.resolve(here, '../bundle/coffre.mjs');
export const MiB = 1024 * 1024;

/** Writes `size` bytes from the CSPRNG to `file` (incompressible: what clients send, once encrypted or not). */
export function randomFile(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  const b = Buffer.allocUnsafe(4 * MiB);
  try {
    for (let pos = 0; pos < size;) {
      const n = Math.min(b.length, size - pos);
      crypto.randomFillSync(b, 0, n);
      fs.writeSync(fd, b, 0, n);
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A read stream of `file` in 1 MiB pieces (the file sits in the page cache: the client only moves bytes). */
export const source = (file: string): Readable => fs.createReadStream(file, { highWaterMark: MiB });

export type Env = Record<string, string>;

/** Runs the `coffre` CLI; resolves with its stdout. */
export function cli(args: string[], env: Env, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // the verb only: arguments may hold an enrolment link
    c.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`coffre ${args.slice(0, 2).join(' ')}: ${err}`)),
    );
    c.stdin.end(input ?? '');
  });
}

/** `coffre serve` on loopback; `port` 0 takes a free one (the URL it logs names it); `env` adds to this process's */
export function serve(dataDir: string, port = 0, env: Env = {}): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const args = [CLI, 'serve', '--data-dir', dataDir, '--port', String(port), '--host', '127.0.0.1'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /"event":"appliance.started","url":"([^"]+)"/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${out.slice(-2000)}`)));
  });
}

/** Starts bench/_vault-peer.js (plain static + durable upload routes); resolves with its URL. */
export function peer(root: string, cert: string, key: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(here, '_vault-peer.js'), root, cert, key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let o = '';
    child.stdout!.on('data', (d: Buffer) => {
      o += d.toString();
      const m = /\{"port":(\d+)\}/.exec(o);
      if (m) resolve({ child, url: `https://127.0.0.1:${m[1]}` });
    });
    child.on('exit', (c) => reject(new Error(`peer server exited ${c}`)));
  });
}

export const stop = (c: ChildProcess) =>
  new Promise<void>((r) => {
    if (c.exitCode !== null) return r();
    c.removeAllListeners('exit');
    c.once('exit', () => r());
    c.kill('SIGTERM');
  });

/** CPU seconds (user + system, all threads) a process used so far */
export const cpuSeconds = (pid: number): number => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks (USER_HZ = 100)
};
export const memory = (pid: number) => {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};
/** resets the peak RSS (VmHWM) of a process */
export const resetPeak = (pid: number) => fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');

export function request(
  url: string,
  ca: string,
  method: string,
  p: string,
  token: string | undefined,
  body?: Readable | string,
  size?: number,
  extra: Record<string, string> = {},
): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const type =
      typeof body === 'string'
        ? { 'content-type': 'application/json' }
        : body
          ? { 'content-type': 'application/octet-stream', 'content-length': String(size) }
          : {};
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        servername: 'localhost',
        ca,
        method,
        path: p,
        agent: false,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...type, ...extra },
      },
      (res) => {
        let bytes = 0;
        const text: Buffer[] = [];
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          if (bytes <= 1 << 20) text.push(d);
        });
        res.on('end', () => resolve({ status: res.statusCode!, bytes, text: Buffer.concat(text).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (typeof body === 'string') req.end(body);
    else if (body) body.pipe(req);
    else req.end();
  });
}

export const rate = (bytes: number, s: number) => Math.round((bytes / MiB / s) * 10) / 10;
/** the 1-minute load average (2 cores are shared): reported with every figure */
export const load = () => Math.round(os.loadavg()[0]! * 100) / 100;
export const round2 = (x: number) => Math.round(x * 100) / 100;

/** A ratio (higher is better) with its target and whether this run met it. */
export function ratio(value: number, min: number): { value: number; target: string; met: boolean } {
  return { value: round2(value), target: `>= ${min}`, met: value >= min };
}
/** A figure where lower is better (a time, a size) with its target. */
export function atMost(
  value: number,
  max: number,
  unit: string,
): { value: number; unit: string; target: string; met: boolean } {
  return { value, unit, target: `<= ${max}`, met: value <= max };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};
