import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { endsWithBench, freePort } from './_peers-servers.js';
import { cli, request, serve, type Env } from './_vault-lib.js';

/**
 * A throwaway `coffre serve` on loopback for bench/peers.ts and bench/console.ts: `coffre init` on
 * a port fixed in advance (the console checks that requests come from the public URL), a member
 * `bench` invited with the CLI, enrolled and signed in through the API with a password. Members
 * need no second factor here (`auth.mfa.requiredRoles` empty): the bench measures transfers, the
 * sign-in flows have their own tests and bench.
 */
export interface BenchAppliance {
  dataDir: string;
  url: string;
  port: number;
  ca: string;
  /** the appliance's TLS certificate and key: the peers serve the same ones */
  cert: string;
  key: string;
  child: ChildProcess;
  username: string;
  userId: string;
  password: string;
  /** an API token of `bench` */
  token: string;
}

export const NO_SECOND_FACTOR: Env = { COFFRE_CFG_auth__mfa__requiredRoles: '[]' };

/**
 * `serveEnv`: added to `coffre serve`'s environment (e.g. NODE_OPTIONS for a CPU profile);
 * `database`: a `database` section written into config.json after `coffre init` (e.g. a PostgreSQL
 * database, migrated by the first start), used by the server and the CLI alike.
 */
export async function startBenchAppliance(
  root: string,
  serveEnv: Env = {},
  o: { database?: Record<string, unknown> } = {},
): Promise<BenchAppliance> {
  const dataDir = path.join(root, 'data');
  const port = await freePort();
  const init = JSON.parse(
    await cli(['init', '--data-dir', dataDir, '--port', String(port), '--json'], NO_SECOND_FACTOR),
  ) as { caFile: string };
  if (o.database) {
    const file = path.join(dataDir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify({ ...cfg, database: o.database }, null, 2));
  }
  const ca = fs.readFileSync(init.caFile, 'utf8');
  const server = await serve(dataDir, port, { ...NO_SECOND_FACTOR, ...serveEnv });
  endsWithBench(server.child);
  const username = 'bench';
  const invited = JSON.parse(
    await cli(
      ['user', 'invite', username, '--email', 'bench@example.test', '--role', 'member'].concat([
        '--data-dir',
        dataDir,
        '--json',
      ]),
      NO_SECOND_FACTOR,
    ),
  ) as { enrolUrl: string; id: string };
  const link = invited.enrolUrl;
  const password = `Tangerine-Ladder-${crypto.randomBytes(6).toString('hex')}-Q7`;
  const json = async (p: string, body: unknown, token?: string) => {
    const r = await request(server.url, ca, 'POST', p, token, JSON.stringify(body));
    if (r.status !== 200 && r.status !== 201) throw new Error(`${p}: ${r.status} ${r.text.slice(0, 300)}`);
    return JSON.parse(r.text) as Record<string, unknown>;
  };
  await json('/api/v1/auth/enrol', { token: link.slice(link.indexOf('#/enrol/') + '#/enrol/'.length), password });
  const token = (await json('/api/v1/auth/login', { username, password, issue: 'token' })).token as string;
  return {
    dataDir,
    url: server.url,
    port,
    ca,
    cert: path.join(dataDir, 'tls', 'cert.pem'),
    key: path.join(dataDir, 'tls', 'key.pem'),
    child: server.child,
    username,
    userId: invited.id,
    password,
    token,
  };
}

/** a new workspace of `bench`: its id */
export async function newWorkspace(a: BenchAppliance, name: string): Promise<string> {
  const r = await request(a.url, a.ca, 'POST', '/api/v1/workspaces', a.token, JSON.stringify({ name }));
  if (r.status !== 201 && r.status !== 200) throw new Error(`workspace: ${r.status} ${r.text.slice(0, 300)}`);
  return (JSON.parse(r.text) as { id: string }).id;
}
