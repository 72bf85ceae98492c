import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { metaHeaders, openVaultEnv, type User, type VaultEnv } from '../vault/support.js';
import { ROOT, startServe } from '../support/cli.js';
import { createTestDatabase, startPostgres, type TestPostgres } from '../support/postgres.js';
import { startHaproxy, type TestHaproxy } from '../support/haproxy.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import type { DatabaseConfig } from '../../src/config/sections/database.js';

/**
 * Two `coffre serve` nodes on one PostgreSQL database behind HAProxy (TCP, round robin) on
 * loopback. Blobs: both nodes use the same data directory, so one blob directory (until an object
 * store is configured). What the nodes must share goes through the database: documents, API
 * tokens, session cookies, sign-in throttles, request budgets (rate limits and load shedding);
 * each scheduled run happens once (advisory-lock leases), and the run of a node that dies is
 * taken over within the lease time.
 */
const LEASE_MS = 4_000;
const SCHEDULED = 'vault.sweep-uploads';
/** a slot every 2 seconds (cron with a seconds field), so that the test sees several without waiting for the minute */
const EVERY_MS = 2_000;
const UNMATCHED_BUDGET = 6;
let own: TestPostgres | undefined;
let drop: () => Promise<void>;
let e: VaultEnv;
let alice: User;
let ws: string;
let q: DatabaseHandle;
let dbCfg: DatabaseConfig;
const nodes: { child: ChildProcess; port: number }[] = [];
let lb: TestHaproxy;
let ca: Buffer;

beforeAll(async () => {
  const cluster = inject('postgres') ?? (own = await startPostgres());
  const db = await createTestDatabase(cluster);
  drop = db.drop;
  dbCfg = {
    type: 'postgres',
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    ssl: false,
    maxConnections: 6,
  };
  e = await openVaultEnv({ COFFRE_CFG_database: JSON.stringify(dbCfg) });
  alice = await e.user('alice');
  ws = await e.workspace(alice);
  ca = fs.readFileSync(path.join(e.t.dataDir, 'tls', 'cert.pem'));
  const env = {
    COFFRE_CFG_database: JSON.stringify(dbCfg),
    COFFRE_CFG_jobs__leaseTtlMs: String(LEASE_MS),
    COFFRE_CFG_jobs__schedules: JSON.stringify({ [SCHEDULED]: `*/${EVERY_MS / 1000} * * * * *` }),
    // a small budget for requests to no route, to count a flood's hits across the nodes
    COFFRE_CFG_monitoring__budgets: JSON.stringify({ unmatched: { perAddress: UNMATCHED_BUDGET, perUser: 0 } }),
  };
  for (let i = 0; i < 2; i++) {
    const s = await startServe(e.t.dataDir, 0, env);
    nodes.push({ child: s.child, port: Number(new URL(s.url).port) });
  }
  lb = await startHaproxy(nodes.map((n) => n.port));
  q = openDatabase(dbCfg);
}, 180_000);

afterAll(async () => {
  for (const n of nodes) {
    if (n.child.exitCode === null) {
      const exited = new Promise((r) => n.child.once('exit', r));
      n.child.kill('SIGTERM');
      await exited;
    }
  }
  await lb?.stop();
  await q?.close();
  await e?.close();
  await drop?.();
  await own?.stop();
});

function call(
  port: number,
  method: string,
  p: string,
  o: { token?: string; json?: unknown; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Buffer; headers: import('node:http').IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    };
    const r = https.request(
      { host: '127.0.0.1', port, path: p, method, ca, servername: 'localhost', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
        );
      },
    );
    r.on('error', reject);
    r.end(o.json !== undefined ? JSON.stringify(o.json) : o.body);
  });
}

describe('two nodes on one PostgreSQL database behind HAProxy', { timeout: 180_000 }, () => {
  it('a document uploaded through one node reads through the other, and through the load balancer', async () => {
    const body = crypto.randomBytes(200_000);
    const up = await call(nodes[0]!.port, 'POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { ...metaHeaders('Minutes.pdf'), 'content-type': 'application/octet-stream' },
      body,
    });
    expect(up.status, up.body.toString()).toBe(201);
    const id = (JSON.parse(up.body.toString()) as { id: string }).id;
    const other = await call(nodes[1]!.port, 'GET', `/api/v1/documents/${id}/content`, { token: alice.token });
    expect(other.status).toBe(200);
    expect(other.body.equals(body)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const r = await call(lb.port, 'GET', `/api/v1/documents/${id}/content`, { token: alice.token });
      expect(r.status).toBe(200);
      expect(r.body.equals(body)).toBe(true);
    }
  });

  it("sign-in failures counted on one node count on the other (the throttle's counters are in the database)", async () => {
    // 3 free failures per account and address: two here, one there, the fourth pays a proof of work
    const attempt = (port: number) =>
      call(port, 'POST', '/api/v1/auth/login', { json: { username: 'mallory-target', password: 'wrong-guess-1' } });
    for (const port of [nodes[0]!.port, nodes[0]!.port, nodes[1]!.port]) {
      const r = await attempt(port);
      expect(r.status, r.body.toString()).toBe(401);
    }
    const fourth = await attempt(nodes[1]!.port);
    expect(fourth.body.toString()).toMatch(/PROOF_REQUIRED/);
  });

  it('a session cookie issued by one node is honoured by the other', async () => {
    const name = `carol${crypto.randomBytes(3).toString('hex')}`;
    const inv = await e.t.appliance.identity.accounts.invite(
      { username: name, email: `${name}@example.test`, role: 'member' },
      'local:test',
      {},
    );
    const password = `Juniper-Compass-${crypto.randomBytes(4).toString('hex')}X`;
    const enrol = await call(nodes[0]!.port, 'POST', '/api/v1/auth/enrol', {
      json: { token: inv.enrolUrl, password },
    });
    expect(enrol.status, enrol.body.toString()).toBe(200);
    const secret = (JSON.parse(enrol.body.toString()) as { totp?: { secret: string } }).totp?.secret;
    let login = await call(nodes[0]!.port, 'POST', '/api/v1/auth/login', { json: { username: name, password } });
    expect(login.status, login.body.toString()).toBe(200);
    const challenge = (JSON.parse(login.body.toString()) as { challenge?: string }).challenge;
    if (challenge && secret) {
      const code = OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30 });
      login = await call(nodes[0]!.port, 'POST', '/api/v1/auth/login/mfa', { json: { challenge, code } });
      expect(login.status, login.body.toString()).toBe(200);
    }
    const cookie = (login.headers['set-cookie'] ?? [])
      .map((c) => c.split(';')[0] ?? '')
      .find((c) => c.startsWith('__Host-'));
    expect(cookie).toBeTruthy();
    const me = await call(nodes[1]!.port, 'GET', '/api/v1/auth/me', { headers: { cookie: cookie! } });
    expect(me.status, me.body.toString()).toBe(200);
    expect(me.body.toString()).toContain(inv.user.id);
    const anon = await call(nodes[1]!.port, 'GET', '/api/v1/auth/me');
    expect(anon.status).toBe(401);
  });

  it("a flood spread over both nodes meets one address's budget (the counters are in the database)", async () => {
    // round robin: through the load balancer, then straight to each node; all from 127.0.0.1
    const hit = (port: number) => call(port, 'GET', `/api/v1/no-such-route-${crypto.randomBytes(2).toString('hex')}`);
    const ports = [lb.port, lb.port, nodes[0]!.port, nodes[1]!.port, lb.port, nodes[1]!.port];
    // the budget's window is the minute: start early in one, so that all hits fall in it
    if (Date.now() % 60_000 > 45_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 50));
    for (const port of ports.slice(0, UNMATCHED_BUDGET)) expect((await hit(port)).status).toBe(404);
    // each node saw about half of the budget; the next hit is refused on either node
    for (const port of [nodes[0]!.port, nodes[1]!.port, lb.port]) {
      const r = await hit(port);
      expect(r.status, r.body.toString()).toBe(429);
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
  });

  it('each scheduled slot runs once, on one node', async () => {
    const started = Date.now();
    const scheduled = async () =>
      await q.db
        .selectFrom('job_runs')
        .select(['scheduled_for', 'outcome'])
        .where('job', '=', SCHEDULED)
        .where('trigger', '=', 'schedule')
        .where('scheduled_for', '>', started)
        .execute();
    const slotsOf = (runs: { scheduled_for: number | null }[]) =>
      [...new Set(runs.map((r) => Number(r.scheduled_for)))].sort((a, b) => a - b);
    // both nodes fire every slot; wait until five slots have a run
    let runs = await scheduled();
    for (const until = Date.now() + 60_000; slotsOf(runs).length < 5; runs = await scheduled()) {
      if (Date.now() > until) throw new Error(`only ${slotsOf(runs).length} scheduled slots ran in a minute`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const slots = slotsOf(runs);
    expect(slots.every((s) => s % EVERY_MS === 0)).toBe(true);
    expect(slots[0]).toBeLessThanOrEqual(Math.ceil((started + 1) / EVERY_MS) * EVERY_MS + 2 * EVERY_MS);
    const perSlot = new Map<number, number>();
    for (const r of runs) perSlot.set(Number(r.scheduled_for), (perSlot.get(Number(r.scheduled_for)) ?? 0) + 1);
    expect([...perSlot.values()].every((n) => n === 1)).toBe(true);
    // the slots 4 seconds older than the latest: both nodes have long fired them, and the run has ended
    const settled = slots.filter((s) => s <= slots.at(-1)! - 2 * EVERY_MS);
    expect(settled.length).toBeGreaterThanOrEqual(3);
    expect(runs.filter((r) => settled.includes(Number(r.scheduled_for))).map((r) => r.outcome)).toEqual(
      settled.map(() => 'succeeded'),
    );
  });

  it('a run whose holder is killed is taken over by a node within the lease time', async () => {
    const job = 'keys.destroy-retired';
    const slot = Date.UTC(2026, 0, 5, 3, 40);
    // another node (a real process) takes the job's lease, as the scheduler does, and starts a run;
    // its lease row says it holds the job for an hour: only its death frees it
    const script = `
      import pg from 'pg';
      const c = new pg.Client(JSON.parse(process.argv[1]));
      await c.connect();
      await c.query('SELECT pg_advisory_lock($1, hashtext($2))', [${0x436f6672}, '${job}']);
      const now = Date.now();
      await c.query('INSERT INTO job_leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at', ['${job}', 'node3:' + process.pid + ':0abc', now, now + 3600000]);
      const r = await c.query("INSERT INTO job_runs (job, trigger, actor, scheduled_for, started_at, outcome) VALUES ($1, 'schedule', $2, $3, $4, 'running') RETURNING id", ['${job}', 'job:${job}', ${slot}, now]);
      console.log(JSON.stringify({ runId: Number(r.rows[0].id) }));
      setInterval(() => undefined, 1000);`;
    const holder = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, JSON.stringify({ ...dbCfg, ssl: false })],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const runId = await new Promise<number>((resolve, reject) => {
      let out = '';
      holder.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /\{"runId":(\d+)\}/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      holder.on('exit', (c) => reject(new Error(`the holder exited (${c})`)));
    });
    const outcome = async (id: number) =>
      (await q.db.selectFrom('job_runs').select('outcome').where('id', '=', id).executeTakeFirstOrThrow()).outcome;
    // alive, it keeps the job: the nodes' watch (every half lease) leaves its run alone
    await new Promise((r) => setTimeout(r, LEASE_MS));
    expect(await outcome(runId)).toBe('running');
    holder.kill('SIGKILL');
    const killedAt = Date.now();
    let taken: { id: number; outcome: string } | undefined;
    while (Date.now() - killedAt < 3 * LEASE_MS) {
      const r = await q.db
        .selectFrom('job_runs')
        .select(['id', 'outcome'])
        .where('job', '=', job)
        .where('scheduled_for', '=', slot)
        .where('id', '!=', runId)
        .executeTakeFirst();
      if (r?.outcome === 'succeeded') {
        taken = { id: Number(r.id), outcome: r.outcome };
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const tookMs = Date.now() - killedAt;
    expect(taken, 'no node took the run over').toBeDefined();
    expect(await outcome(runId)).toBe('abandoned');
    // the watch runs every half lease: the run is taken over within one lease (plus the run itself)
    expect(tookMs).toBeLessThan(LEASE_MS + 1_000);
    console.log(`two nodes: run taken over ${tookMs} ms after its holder was killed (lease ${LEASE_MS} ms)`);
  });
});
