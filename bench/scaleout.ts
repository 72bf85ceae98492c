import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openAppliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { createTestDatabase, postgresConfig, startPostgres, type TestPostgres } from '../test/support/postgres.js';
import { startHaproxy, type TestHaproxy } from '../test/support/haproxy.js';
import { seedDocuments } from './_listing-seed.js';
import { NO_SECOND_FACTOR, newWorkspace, startBenchAppliance, type BenchAppliance } from './_peers-appliance.js';
import { endsWithBench } from './_peers-servers.js';
import { ensureTools } from './_tools.js';
import {
  MiB,
  atMost,
  cpuSeconds,
  load,
  median,
  randomFile,
  rate,
  ratio,
  request,
  round2,
  serve,
  source,
  stop,
} from './_vault-lib.js';

/**
 * `npm run bench -- scaleout`: past one machine (docs/scale-out.md), on a throwaway PostgreSQL
 * cluster on loopback (test/support/postgres.ts: Debian's postgresql, fsync off).
 * - nodes: uploads and downloads of SCALEOUT_BENCH_BYTES (256 MiB) of incompressible bytes, one
 *   client, then CLIENTS clients at once (each a quarter of the bytes), through one `coffre serve`
 *   node directly, through that node behind HAProxy, and through two nodes behind HAProxy (TCP
 *   mode, round robin: test/support/haproxy.ts). Both nodes serve one data directory, so one
 *   PostgreSQL database and one blob directory. CPU: utime + stime of the nodes and HAProxy
 *   (not PostgreSQL's), per GiB moved. Interleaved rounds, as bench/vault.ts.
 * - listing: one workspace of SCALEOUT_BENCH_DOCS (100,000) documents on SQLite and on
 *   PostgreSQL (bench/_listing-seed.ts), each behind its own `coffre serve`, both up at once:
 *   documents listed per second (the first page, walks through pages of 100 and of 1,000, name
 *   searches, warm), the two dialects' rounds interleaved.
 * SCALEOUT_BENCH_PARTS=nodes,listing selects parts.
 */
const SIZE = Number(process.env.SCALEOUT_BENCH_BYTES ?? 256 * MiB);
const CLIENTS = 4;
const REPEAT = Math.max(1, Number(process.env.SCALEOUT_BENCH_REPEAT ?? 3));
const DOCS = Number(process.env.SCALEOUT_BENCH_DOCS ?? 100_000);
const PARTS = new Set((process.env.SCALEOUT_BENCH_PARTS ?? 'nodes,listing').split(','));
const GiB = 1024 * MiB;

const postgresSection = (d: { host: string; port: number; user: string; database: string }) => postgresConfig(d, 10);

/** A figure where no speed-up is expected (two nodes on two cores): a ratio of at least `min`. */
const sameOrder = (value: number, min: number) => ({ ...ratio(value, min), expectation: 'same order on two cores' });

async function nodes(pg: TestPostgres, root: string, children: ChildProcess[]): Promise<Record<string, unknown>> {
  ensureTools({ haproxy: 'haproxy' });
  const db = await createTestDatabase(pg);
  const lbs: TestHaproxy[] = [];
  try {
    const a = await startBenchAppliance(path.join(root, 'nodes'), {}, { database: postgresSection(db) });
    children.push(a.child);
    const ws = await newWorkspace(a, 'Nodes bench');
    const second = await serve(a.dataDir, 0, NO_SECOND_FACTOR);
    children.push(endsWithBench(second.child));
    lbs.push(await startHaproxy([a.port]), await startHaproxy([a.port, Number(new URL(second.url).port)]));
    const big = path.join(root, 'big.bin');
    const part = path.join(root, 'part.bin');
    randomFile(big, SIZE);
    randomFile(part, SIZE / CLIENTS);
    let n = 0;
    const post = async (url: string, file: string, size: number) => {
      const r = await request(url, a.ca, 'POST', `/api/v1/workspaces/${ws}/documents`, a.token, source(file), size, {
        'content-disposition': `attachment; filename=upload-${n++}.bin`,
      });
      if (r.status !== 201) throw new Error(`upload: ${r.status} ${r.text.slice(0, 300)}`);
      return (JSON.parse(r.text) as { id: string }).id;
    };
    const get = async (url: string, doc: string, size: number) => {
      const r = await request(url, a.ca, 'GET', `/api/v1/documents/${doc}/content`, a.token);
      if (r.status !== 200 || r.bytes !== size) throw new Error(`download: ${r.status}, ${r.bytes} of ${size} bytes`);
    };
    const bigDoc = await post(a.url, big, SIZE);
    const partDoc = await post(a.url, part, SIZE / CLIENTS);
    const lbUrl = (h: TestHaproxy) => `https://127.0.0.1:${h.port}`;
    const setups: Record<string, { url: string; pids: number[] }> = {
      oneNode: { url: a.url, pids: [a.child.pid!] },
      oneNodeHaproxy: { url: lbUrl(lbs[0]!), pids: [a.child.pid!, lbs[0]!.pid] },
      twoNodesHaproxy: { url: lbUrl(lbs[1]!), pids: [a.child.pid!, second.child.pid!, lbs[1]!.pid] },
    };
    const all = (f: () => Promise<unknown>) => Promise.all(Array.from({ length: CLIENTS }, f)).then(() => undefined);
    const measures: Record<string, (url: string) => Promise<void>> = {
      upload: async (url) => void (await post(url, big, SIZE)),
      download: (url) => get(url, bigDoc, SIZE),
      [`upload${CLIENTS}`]: (url) => all(() => post(url, part, SIZE / CLIENTS)),
      [`download${CLIENTS}`]: (url) => all(() => get(url, partDoc, SIZE / CLIENTS)),
    };
    type Runs = { seconds: number[]; cpuPerGiB: number[] };
    const runs: Record<string, Record<string, Runs>> = Object.fromEntries(
      Object.keys(setups).map((s) => [
        s,
        Object.fromEntries(Object.keys(measures).map((m) => [m, { seconds: [], cpuPerGiB: [] }])),
      ]),
    );
    const loads: number[] = [];
    const cpu = (pids: number[]) => pids.reduce((t, p) => t + cpuSeconds(p), 0);
    for (let r = 0; r < REPEAT; r++) {
      loads.push(load());
      for (const [m, f] of Object.entries(measures))
        for (const [s, setup] of Object.entries(setups)) {
          const c0 = cpu(setup.pids);
          const t = performance.now();
          await f(setup.url);
          const secs = (performance.now() - t) / 1000;
          runs[s]![m]!.seconds.push(secs);
          runs[s]![m]!.cpuPerGiB.push(round2(((cpu(setup.pids) - c0) * GiB) / SIZE));
        }
    }
    loads.push(load());
    const best = (s: string, m: string) => Math.min(...runs[s]![m]!.seconds);
    const cpuOf = (s: string, m: string) => median(runs[s]![m]!.cpuPerGiB);
    const per = <T>(f: (s: string, m: string) => T) =>
      Object.fromEntries(
        Object.keys(setups).map((s) => [s, Object.fromEntries(Object.keys(measures).map((m) => [m, f(s, m)]))]),
      );
    /** setup `s` against one node directly: throughput (best/best, at least `min`), CPU per GiB (medians, at most `max`) */
    const vsOne = (s: string, min: number, max: number) =>
      Object.fromEntries(
        Object.keys(measures).map((m) => {
          const c = cpuOf(s, m) / cpuOf('oneNode', m);
          return [
            m,
            {
              throughput: {
                ...sameOrder(best('oneNode', m) / best(s, m), min),
                medianOfRounds: round2(median(runs[s]![m]!.seconds.map((x, i) => runs.oneNode![m]!.seconds[i]! / x))),
              },
              cpuPerGiB: { value: round2(c), target: `<= ${max}`, met: c <= max },
            },
          ];
        }),
      );
    return {
      database: 'PostgreSQL 1 database, throwaway cluster on loopback (fsync off)',
      blobStore: 'one local directory: both nodes serve the same data directory (as test/core/nodes.test.ts)',
      loadBalancer: 'HAProxy (Debian), TCP mode, round robin; TLS ends on the nodes',
      bytes: SIZE,
      clients: CLIENTS,
      rounds: REPEAT,
      load1: loads,
      MiBs: per((s, m) => rate(SIZE, best(s, m))),
      runsMiBs: per((s, m) => runs[s]![m]!.seconds.map((x) => rate(SIZE, x))),
      cpuSecondsPerGiB: per((s, m) => cpuOf(s, m)),
      cpuSecondsPerGiBRuns: per((s, m) => runs[s]![m]!.cpuPerGiB),
      cpuCounted: 'utime + stime of the coffre serve processes (threads included) and of HAProxy; not PostgreSQL',
      ratios: {
        twoNodesVsOneNode: vsOne('twoNodesHaproxy', 0.5, 2),
        oneNodeHaproxyVsOneNode: vsOne('oneNodeHaproxy', 0.8, 1.5),
      },
    };
  } finally {
    for (const h of lbs) await h.stop();
  }
}

/**
 * The listing rounds call the vault's routes ~340 times a round: more than a person's budget for
 * them (`monitoring.budgets`), which is lifted here; the global limit per address stays.
 */
const UNBUDGETED_LISTING = { COFFRE_CFG_monitoring__budgets__vault: '{"perAddress":0,"perUser":0}' };

/** The listing figures of one round, documents per second, and the p50 latencies behind them. */
interface ListingRound {
  docsPerS: Record<string, number>;
  firstPageOf100P50Ms: number;
  searchP50Ms: Record<string, number>;
}

/**
 * One dialect's workspace of DOCS documents behind a fresh `coffre serve`: seeded while the server
 * is stopped, then `round()` measures once through the API (one client).
 */
async function listingServer(root: string, database: Record<string, unknown> | undefined, children: ChildProcess[]) {
  const a: BenchAppliance = await startBenchAppliance(root, {}, database ? { database } : {});
  children.push(a.child);
  const ws = await newWorkspace(a, 'Listing bench');
  await stop(a.child);
  const app = await openAppliance({
    dataDir: a.dataDir,
    log: createLogger({ level: 'silent', destination: 'stderr' }),
    migrate: false,
  });
  let seed: Awaited<ReturnType<typeof seedDocuments>>;
  try {
    seed = await seedDocuments(app.db, app.keys.fields, {
      workspaceId: ws,
      createdBy: `user:${a.userId}`,
      count: DOCS,
      at: Date.now(),
    });
  } finally {
    await app.close();
  }
  const server = await serve(a.dataDir, 0, { ...NO_SECOND_FACTOR, ...UNBUDGETED_LISTING });
  children.push(endsWithBench(server.child));
  const base = `/api/v1/workspaces/${ws}/documents`;
  type Page = { items: unknown[]; next: string | null; total: number | null };
  const timed = async (method: 'GET' | 'POST', p: string, body?: Record<string, unknown>) => {
    const t = performance.now();
    const r = await request(server.url, a.ca, method, p, a.token, body && JSON.stringify(body));
    if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text.slice(0, 200)}`);
    return { s: (performance.now() - t) / 1000, page: JSON.parse(r.text) as Page };
  };
  // the first request after start: index key unwrapped, pool connections opened, pages read
  const coldMs = Math.round((await timed('GET', `${base}?limit=100`)).s * 1000);
  /** pages of `limit` from the newest, until `docs` documents or the end: documents per second */
  const walk = async (limit: number, docs: number) => {
    let cursor: string | null = null;
    let seen = 0;
    const t = performance.now();
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const { page } = await timed('GET', `${base}?limit=${limit}${q}`);
      seen += page.items.length;
      cursor = page.next;
    } while (cursor && seen < docs);
    return Math.round(seen / ((performance.now() - t) / 1000));
  };
  // name searches, warm (each query once before): 'minutes' matches 100 names, sorted by name;
  // 'document' matches nearly all, a page of the newest (src/vault/listing.ts)
  const search = async (q: string) => {
    await timed('POST', `${base}/search`, { q, limit: 100 });
    const runs: { s: number; n: number }[] = [];
    for (let r = 0; r < 10; r++) {
      const { s, page } = await timed('POST', `${base}/search`, { q, limit: 100 });
      runs.push({ s, n: page.items.length });
    }
    const p50 = median(runs.map((x) => x.s));
    return { p50Ms: round2(p50 * 1000), docsPerS: Math.round(runs[0]!.n / p50) };
  };
  const round = async (): Promise<ListingRound> => {
    const first: number[] = [];
    for (let r = 0; r < 20; r++) first.push((await timed('GET', `${base}?limit=100`)).s);
    const walkPagesOf100 = await walk(100, 20_000);
    const walkPagesOf1000 = await walk(1000, Infinity);
    const minutes = await search('minutes');
    const document = await search('document');
    return {
      docsPerS: {
        firstPageOf100: Math.round(100 / median(first)),
        walkPagesOf100,
        walkPagesOf1000,
        searchFewMatches: minutes.docsPerS,
        searchManyMatches: document.docsPerS,
      },
      firstPageOf100P50Ms: round2(median(first) * 1000),
      searchP50Ms: { minutes: minutes.p50Ms, document: document.p50Ms },
    };
  };
  return { seed, coldMs, round, stop: () => stop(server.child) };
}

const LISTING_FIGURES: Record<string, string> = {
  firstPageOf100: 'the first page of 100, p50 of 20',
  walkPagesOf100: 'pages of 100 from the newest, 20,000 documents',
  walkPagesOf1000: 'pages of 1,000, the whole workspace',
  searchFewMatches: "name search 'minutes' (100 matches, sorted by name), p50 of 10",
  searchManyMatches: "name search 'document' (every document matches: the newest 100), p50 of 10",
};

/** SQLite and PostgreSQL side by side: both servers up, their rounds interleaved (as bench/vault.ts). */
async function listing(pg: TestPostgres, root: string, children: ChildProcess[]): Promise<Record<string, unknown>> {
  const db = await createTestDatabase(pg);
  const servers = {
    sqlite: await listingServer(path.join(root, 'listing-sqlite'), undefined, children),
    postgres: await listingServer(path.join(root, 'listing-postgres'), postgresSection(db), children),
  };
  const rounds: Record<keyof typeof servers, ListingRound[]> = { sqlite: [], postgres: [] };
  const loads: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    loads.push(load());
    for (const d of ['sqlite', 'postgres'] as const) rounds[d].push(await servers[d].round());
  }
  loads.push(load());
  for (const s of Object.values(servers)) await s.stop();
  const best = (d: keyof typeof servers, k: string) => Math.max(...rounds[d].map((x) => x.docsPerS[k]!));
  const of = (d: keyof typeof servers) => {
    const x = servers[d];
    return {
      seeding: {
        docsPerS: Math.round(DOCS / x.seed.seconds),
        seconds: round2(x.seed.seconds),
        writeSeconds: round2(x.seed.writeSeconds),
        indexBuildSeconds: round2(x.seed.indexBuildSeconds),
      },
      docsPerS: Object.fromEntries(Object.keys(LISTING_FIGURES).map((k) => [k, best(d, k)])),
      runsDocsPerS: Object.fromEntries(
        Object.keys(LISTING_FIGURES).map((k) => [k, rounds[d].map((x) => x.docsPerS[k]!)]),
      ),
      firstPageOf100ColdMs: atMost(x.coldMs, 50, 'ms'),
      firstPageOf100P50Ms: atMost(round2(median(rounds[d].map((x) => x.firstPageOf100P50Ms))), 50, 'ms'),
      searchByNameP50Ms: {
        minutes: atMost(round2(median(rounds[d].map((x) => x.searchP50Ms.minutes!))), 50, 'ms'),
        document: atMost(round2(median(rounds[d].map((x) => x.searchP50Ms.document!))), 50, 'ms'),
      },
    };
  };
  return {
    documents: DOCS,
    rounds: REPEAT,
    load1: loads,
    figures: LISTING_FIGURES,
    sqlite: of('sqlite'),
    postgres: of('postgres'),
    postgresVsSqlite: Object.fromEntries(
      Object.keys(LISTING_FIGURES).map((k) => [
        k,
        {
          value: round2(best('postgres', k) / best('sqlite', k)),
          medianOfRounds: round2(
            median(rounds.postgres.map((x, i) => x.docsPerS[k]! / rounds.sqlite[i]!.docsPerS[k]!)),
          ),
          target: 'none given: reported',
        },
      ]),
    ),
  };
}

export default async function bench(): Promise<Record<string, unknown>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-scaleout-'));
  const children: ChildProcess[] = [];
  const out: Record<string, unknown> = { uptime: fs.readFileSync('/proc/loadavg', 'utf8').trim() };
  const pg = await startPostgres({ maxConnections: 100 });
  try {
    if (PARTS.has('nodes')) out.nodes = await nodes(pg, root, children);
    if (PARTS.has('listing')) out.listing = await listing(pg, root, children);
  } finally {
    for (const c of children) await stop(c);
    await pg.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return out;
}
