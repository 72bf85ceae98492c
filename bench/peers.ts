import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newWorkspace, startBenchAppliance } from './_peers-appliance.js';
import { Client, downloadMany, uploadMany, type Batch, type Server } from './_peers-client.js';
import { startNginx, startRclone, type Peer } from './_peers-servers.js';
import { MiB, load, median, randomFile, rate, ratio, round2, stop } from './_vault-lib.js';

/**
 * `npm run bench -- peers`: Coffre against the servers someone might run instead, in one run, on
 * loopback HTTPS with the same certificate, the same client code (bench/_peers-client.ts) and the
 * same incompressible bytes (bench/_peers-servers.ts starts the peers):
 * - nginx (WebDAV PUT and GET, TLS 1.3 AES-256-GCM): the plain-server ceiling, target ≥ 0.8×;
 * - rclone `serve webdav` over a `crypt` remote: encrypted at rest like Coffre, target ≥ 1.5×.
 * Each server gets, per round: one file of PEERS_BENCH_BYTES (1 GiB) uploaded then downloaded by
 * one client, and PEERS_BENCH_DOCS (10,000) documents of PEERS_BENCH_DOC_BYTES (100 KiB, slices of
 * that file) uploaded then downloaded by PEERS_BENCH_CLIENTS (16) concurrent clients: documents per
 * second over the batch and each request's p99. Coffre is driven through its API (a new document
 * per file, in a new workspace per round); the peers get a new directory per round, removed after.
 * PEERS_BENCH_REPEAT rounds (3) run interleaved (every measure of every server once per round,
 * the servers' order turning each round), so drifting load from other users of the machine hits
 * both sides of a ratio alike; a ratio is best against best, with the median of the rounds' own
 * ratios next to it. Each server's CPU seconds over each measure's wall seconds are reported
 * (nginx: master and workers). PEERS_BENCH_PROFILE=<dir> writes a CPU profile of `coffre serve`.
 */
const SIZE = Number(process.env.PEERS_BENCH_BYTES ?? 1024 * MiB);
const DOCS = Number(process.env.PEERS_BENCH_DOCS ?? 10_000);
const DOC_BYTES = Number(process.env.PEERS_BENCH_DOC_BYTES ?? 100 * 1024);
const CLIENTS = Number(process.env.PEERS_BENCH_CLIENTS ?? 16);
const REPEAT = Math.max(1, Number(process.env.PEERS_BENCH_REPEAT ?? 3));
const PROFILE = process.env.PEERS_BENCH_PROFILE;
/**
 * Coffre's per-user and per-address budget for document transfers (240 and 300 a minute, for
 * people and scripts sharing an appliance) is lifted, as an operator expecting bulk deposits
 * would (`monitoring.budgets`); its global limit of 1,200 requests a minute per address stays:
 * each batch starts a new minute for it.
 */
const BULK = { COFFRE_CFG_monitoring__budgets__transfer: '{"perAddress":0,"perUser":0}' };
const RATE_WINDOW_MS = 61_000;

/** a server under test: a fresh place to write for each round */
interface Contender {
  name: string;
  child: ChildProcess;
  round(r: number): Promise<Server>;
  endRound(r: number): Promise<void>;
}

/** CPU seconds (user + system) of a process and all its descendants */
function treeCpu(pid: number): number {
  let s = 0;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    s += (Number(f[11]) + Number(f[12])) / 100;
    for (const t of fs.readdirSync(`/proc/${pid}/task`))
      for (const c of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean))
        s += treeCpu(Number(c));
  } catch {
    // the process ended
  }
  return s;
}

function dav(p: Peer, ca: string): Contender {
  const base = { name: p.name, url: p.url, ca, auth: {} };
  const admin = () =>
    new Client({ ...base, store: () => ({ method: 'PUT', path: '/', headers: {} }), readPath: () => '' });
  const call = async (method: string, pth: string, headers: Record<string, string> = {}) => {
    const c = admin();
    try {
      const r = await c.send(method, pth, headers);
      if (r.status >= 300) throw new Error(`${p.name}: ${method} ${pth}: ${r.status} ${r.text.slice(0, 200)}`);
    } finally {
      c.close();
    }
  };
  return {
    name: p.name,
    child: p.child,
    async round(r) {
      await call('MKCOL', `/r${r}/`);
      return {
        ...base,
        store: (name) => ({ method: 'PUT', path: `/r${r}/${name}`, headers: {} }),
        readPath: (name) => `/r${r}/${name}`,
      };
    },
    endRound: (r) => call('DELETE', `/r${r}/`, { depth: 'infinity' }),
  };
}

function coffre(url: string, ca: string, token: string, child: ChildProcess, ws: (r: number) => Promise<string>) {
  const auth = { authorization: `Bearer ${token}` };
  const c: Contender = {
    name: 'coffre',
    child,
    async round(r) {
      const id = await ws(r);
      return {
        name: 'coffre',
        url,
        ca,
        auth,
        store: (name) => ({
          method: 'POST',
          path: `/api/v1/workspaces/${id}/documents`,
          headers: { 'content-disposition': `attachment; filename="${name}"` },
        }),
        readPath: (_name, reply) => `/api/v1/documents/${(JSON.parse(reply) as { id: string }).id}/content`,
      };
    },
    endRound: async () => undefined,
  };
  return c;
}

type Kind = 'fileUpload' | 'fileDownload' | 'docsUpload' | 'docsDownload';
const KINDS: Kind[] = ['fileUpload', 'fileDownload', 'docsUpload', 'docsDownload'];

interface Run {
  seconds: number;
  cores: number;
  batch?: Batch;
  cipher: string;
}

export default async function bench(): Promise<Record<string, unknown>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-peers-'));
  const children: ChildProcess[] = [];
  const out: Record<string, unknown> = { uptime: fs.readFileSync('/proc/loadavg', 'utf8').trim() };
  try {
    const profile: Record<string, string> = PROFILE
      ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(PROFILE)}` }
      : {};
    const a = await startBenchAppliance(root, { ...BULK, ...profile });
    children.push(a.child);
    const nginx = await startNginx(root, a.cert, a.key);
    children.push(nginx.child);
    const rclone = await startRclone(root, a.cert, a.key);
    children.push(rclone.child);
    const contenders = [
      coffre(a.url, a.ca, a.token, a.child, (r) => newWorkspace(a, `Bench round ${r}`)),
      dav(nginx, a.ca),
      dav(rclone, a.ca),
    ];
    const big = path.join(root, 'big.bin');
    randomFile(big, Math.max(SIZE, DOCS * DOC_BYTES));
    const runs = new Map<string, Run[]>();
    const record = (name: string, kind: Kind, run: Run) => {
      const k = `${name}.${kind}`;
      runs.set(k, [...(runs.get(k) ?? []), run]);
    };
    const loads: number[] = [];
    let coffreBatchAt = -Infinity;
    for (let r = 0; r < REPEAT; r++) {
      loads.push(load());
      const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]!);
      const servers = new Map<string, Server>();
      for (const c of order) servers.set(c.name, await c.round(r));
      const filePaths = new Map<string, string>();
      const docPaths = new Map<string, string[]>();
      for (const kind of KINDS) {
        for (const c of order) {
          const s = servers.get(c.name)!;
          if (c.name === 'coffre' && kind.startsWith('docs')) {
            const wait = coffreBatchAt + RATE_WINDOW_MS - Date.now();
            if (wait > 0) await new Promise((res) => setTimeout(res, wait));
            coffreBatchAt = Date.now();
          }
          const c0 = treeCpu(c.child.pid!);
          const t = performance.now();
          let run: Omit<Run, 'seconds' | 'cores'>;
          if (kind === 'fileUpload') {
            const cl = new Client(s);
            try {
              const p = await cl.put('big.bin', fs.createReadStream(big, { highWaterMark: MiB, end: SIZE - 1 }), SIZE);
              filePaths.set(c.name, p.readPath);
              run = { cipher: p.cipher };
            } finally {
              cl.close();
            }
          } else if (kind === 'fileDownload') {
            const cl = new Client(s);
            try {
              run = { cipher: (await cl.get(filePaths.get(c.name)!, SIZE)).cipher };
            } finally {
              cl.close();
            }
          } else if (kind === 'docsUpload') {
            const u = await uploadMany(s, {
              clients: CLIENTS,
              count: DOCS,
              size: DOC_BYTES,
              source: big,
              prefix: 'doc-',
            });
            docPaths.set(c.name, u.paths);
            run = { batch: u.batch, cipher: u.batch.cipher };
          } else {
            const b = await downloadMany(s, { clients: CLIENTS, paths: docPaths.get(c.name)!, size: DOC_BYTES });
            run = { batch: b, cipher: b.cipher };
          }
          const seconds = (performance.now() - t) / 1000;
          record(c.name, kind, { ...run, seconds, cores: round2((treeCpu(c.child.pid!) - c0) / seconds) });
          const b = run.batch;
          const detail = b ? `, ${b.docsPerS} docs/s, p99 ${b.p99Ms} ms, ${b.errors} errors` : '';
          process.stderr.write(
            `peers: round ${r} ${c.name} ${kind} ${seconds.toFixed(1)} s${detail}, load ${load()}\n`,
          );
        }
      }
      for (const c of order) await c.endRound(r);
    }
    loads.push(load());
    out.result = report(runs, loads);
  } finally {
    for (const c of children.reverse()) await stop(c);
    fs.rmSync(root, { recursive: true, force: true });
  }
  return out;
}

function report(runs: Map<string, Run[]>, loads: number[]): Record<string, unknown> {
  const of = (name: string, kind: Kind) => runs.get(`${name}.${kind}`)!;
  /** a run's throughput: bytes per second for the file, documents stored or read per second for the batches */
  const speed = (x: Run) => (x.batch ? x.batch.docsPerS : SIZE / x.seconds);
  const best = (name: string, kind: Kind) => Math.max(...of(name, kind).map(speed));
  const names = ['coffre', 'nginx', 'rclone'];
  const perServer = (name: string) => {
    const f = (k: Kind) => of(name, k);
    const docs = (k: Kind) => ({
      bestDocsPerS: best(name, k),
      runsDocsPerS: f(k).map((x) => x.batch!.docsPerS),
      runsP50Ms: f(k).map((x) => x.batch!.p50Ms),
      runsP99Ms: f(k).map((x) => x.batch!.p99Ms),
      runsErrors: f(k).map((x) => x.batch!.errors),
      firstError: f(k).find((x) => x.batch!.firstError)?.batch!.firstError,
      bestP99Ms: Math.min(...f(k).map((x) => x.batch!.p99Ms)),
      serverCoresBusy: f(k).map((x) => x.cores),
    });
    return {
      cipher: [...new Set(KINDS.flatMap((k) => f(k).map((x) => x.cipher)))].join(','),
      fileUpload: {
        bestMiBs: rate(best(name, 'fileUpload'), 1),
        runsMiBs: f('fileUpload').map((x) => rate(SIZE, x.seconds)),
        serverCoresBusy: f('fileUpload').map((x) => x.cores),
      },
      fileDownload: {
        bestMiBs: rate(best(name, 'fileDownload'), 1),
        runsMiBs: f('fileDownload').map((x) => rate(SIZE, x.seconds)),
        serverCoresBusy: f('fileDownload').map((x) => x.cores),
      },
      docsUpload: docs('docsUpload'),
      docsDownload: docs('docsDownload'),
    };
  };
  /** throughput of Coffre over the peer's, best against best and the median of the rounds */
  const vs = (peer: string, kind: Kind, min: number) => ({
    ...ratio(best('coffre', kind) / best(peer, kind), min),
    medianOfRounds: round2(median(of('coffre', kind).map((x, i) => speed(x) / speed(of(peer, kind)[i]!)))),
  });
  /** p99 latency of the peer over Coffre's (higher is better for Coffre), best against best */
  const p99 = (peer: string, kind: Kind, min: number) => {
    const b = (n: string) => Math.min(...of(n, kind).map((x) => x.batch!.p99Ms));
    return {
      ...ratio(b(peer) / b('coffre'), min),
      medianOfRounds: round2(
        median(of('coffre', kind).map((x, i) => of(peer, kind)[i]!.batch!.p99Ms / x.batch!.p99Ms)),
      ),
    };
  };
  const ratios: Record<string, unknown> = {};
  for (const [peer, min] of [
    ['nginx', 0.8],
    ['rclone', 1.5],
  ] as const) {
    for (const k of KINDS) ratios[`${k}Vs${peer[0]!.toUpperCase()}${peer.slice(1)}`] = vs(peer, k, min);
    for (const k of ['docsUpload', 'docsDownload'] as const)
      ratios[`${k}P99Vs${peer[0]!.toUpperCase()}${peer.slice(1)}`] = p99(peer, k, min);
  }
  return {
    fileBytes: SIZE,
    documents: DOCS,
    documentBytes: DOC_BYTES,
    clients: CLIENTS,
    rounds: REPEAT,
    load1: loads,
    servers: Object.fromEntries(names.map((n) => [n, perServer(n)])),
    ratios,
  };
}
