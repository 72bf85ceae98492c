/**
 * A throwaway PostgreSQL server for tests (Debian's postgresql package): initdb into a temp dir,
 * run as the `postgres` system user (PostgreSQL refuses to run as root), listening on 127.0.0.1 on
 * a free port, trust authentication for the test role `coffre`. A test that needs it and cannot
 * start it fails; it never skips.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { DatabaseConfig } from '../../src/config/sections/database.js';

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  database: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres')))
    : [];
  if (!versions.length)
    throw new Error(
      'PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres); ./scripts/test installs the postgresql package',
    );
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

/** `fsync`: commits reach the disk (benches of durability); tests run without, for speed */
export async function startPostgres(o: { maxConnections?: number; fsync?: boolean } = {}): Promise<TestPostgres> {
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-pg-'));
  const data = path.join(dir, 'data');
  const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asPostgres.length) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    asPostgres.length
      ? execFileSync(asPostgres[0]!, [...asPostgres.slice(1), cmd, ...args], { stdio: 'pipe' })
      : execFileSync(cmd, args, { stdio: 'pipe' });
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'coffre', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const port = await freePort();
  const args = [
    '-D',
    data,
    '-k',
    dir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `fsync=${o.fsync ? 'on' : 'off'}`,
    '-c',
    `max_connections=${o.maxConnections ?? 60}`,
  ];
  const child: ChildProcess = asPostgres.length
    ? spawn(asPostgres[0]!, [...asPostgres.slice(1), path.join(bin, 'postgres'), ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      })
    : spawn(path.join(bin, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok && /ready to accept connections/.test(log)) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start: ${log.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: '127.0.0.1',
    port,
    user: 'coffre',
    database: 'postgres',
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        // fast shutdown, sent to the postmaster itself (runuser, when root, may not pass it on)
        try {
          const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (pid > 0) process.kill(pid, 'SIGINT');
        } catch {
          // already gone
        }
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The appliance's `database` section for a test database (loopback, trust authentication, no TLS). */
export function postgresConfig(
  d: Pick<TestPostgres, 'host' | 'port' | 'user' | 'database'>,
  maxConnections = 8,
): DatabaseConfig {
  return {
    type: 'postgres',
    host: d.host,
    port: d.port,
    database: d.database,
    user: d.user,
    ssl: false,
    maxConnections,
  } as DatabaseConfig;
}

/**
 * A fresh, empty database of its own in a running cluster (one cluster serves a whole run: a
 * `CREATE DATABASE` costs a fraction of an initdb). `drop()` removes it, closing what still uses it.
 */
export async function createTestDatabase(
  c: Omit<TestPostgres, 'stop'>,
): Promise<Omit<TestPostgres, 'stop'> & { drop(): Promise<void> }> {
  const pg = (await import('pg')).default;
  const name = `coffre_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = async (q: string) => {
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, database: c.database });
    await client.connect();
    try {
      await client.query(q);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    database: name,
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
